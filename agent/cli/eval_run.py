"""``vidagent eval run`` proper: the run folder's lock, the LLM probe, the runner with its progress
bar, the summary, and the exit status that says whether the run failed.

The command (:func:`vidagent.cli.eval.run`) checks its options and builds the run's
:class:`~vidagent.evals.runner.RunConfig`; :func:`run_benchmark` does the rest:

- the LLM client is built before the run folder is touched, and probed (``GET /v1/models``,
  seconds) before anything is sent, when anything is left to run;
- the folder is locked (:class:`~vidagent.evals.run_folder.RunLock`) from the config check to the
  summary; damaged lines of ``results.jsonl`` are reported, by number;
- the progress bar shows the rate since the run started and, while no result comes, what it waits
  for (:class:`~vidagent.cli.run_display.RunStatus`);
- Ctrl-C prints ``interrupted: N of M samples saved ...; resume with: <command>`` (exit 130);
- samples that could not reach the LLM, or more failures than ``--max-failures``, fail the run
  (exit 2) after the summary is written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from vidagent.evals.benchmark import Benchmark, Params

if TYPE_CHECKING:
    from vidagent.cli.run_display import RunStatus
    from vidagent.evals.common import Sample, SampleResult
    from vidagent.evals.runner import RunConfig, Waiting
    from vidagent.llm import LLMClient
    from vidagent.retrieval import TextEmbedder

__all__ = ["check_failures", "interrupted", "run_benchmark", "run_progress"]

BuildLLM = Callable[["RunConfig", int, float, bool], "LLMClient"]
Progress = Callable[[int, int], None]


def run_benchmark(
    bench: Benchmark[Any],
    config: RunConfig,
    out: Path,
    source: tuple[str, Path],
    *,
    build_llm: BuildLLM,
    taxonomy: Path | None,
    bank: Path | None,
    device: str,
    llm_options: tuple[int, float, bool],
    retry_failed: bool,
    force: bool,
    progress: bool,
    resume: Callable[[], str],
) -> None:
    """The run proper, holding the run folder's lock from the config check to the summary."""
    import time

    from vidagent.cli.eval_sources import load_bank, timeline_source
    from vidagent.cli.run_display import RunStatus
    from vidagent.evals.common import read_taxonomy
    from vidagent.evals.report import summarize
    from vidagent.evals.results import DAMAGED, RESULTS, load_results
    from vidagent.evals.run_folder import RunLock, check_config, prepare_run_dir
    from vidagent.evals.runner import Solver, failure_limit, run_samples, to_run

    params = Params(z=config.lta_z, candidates=config.lta_k)
    samples = bench.load_samples(Path(config.annotations), params)[: config.limit]
    limit_failures = failure_limit(config.max_failures, len(samples))
    max_retries, timeout_s, no_cache = llm_options
    llm = build_llm(config, max_retries, timeout_s, no_cache)
    try:
        prepare_run_dir(out)
        with RunLock(out):
            check_config(out, config, force)
            loaded = load_results(out / RESULTS)
            if loaded.damaged:
                typer.echo(
                    f"warning: {loaded.describe_damage()}; samples with no other record run "
                    f"again, and the damaged lines move to {out / DAMAGED}",
                    err=True,
                )
            ran = len(to_run(samples, loaded.results, retry_failed))
            try:
                if ran:
                    llm.probe_sync()  # a silent, wrong or modelless server fails here, in seconds
                tax = read_taxonomy(taxonomy) if taxonomy is not None else None
                solve = Solver(llm, config, tax, load_bank(bank), _text_embedder_for(bench))
                src = timeline_source(source[0], source[1], config, taxonomy, device)
                start = time.perf_counter()
                status = RunStatus(getattr(llm, "backend", None), max_retries)
                with run_progress(progress, status) as (on_progress, on_wait):
                    results = run_samples(
                        samples, source=src, solve=solve, run_dir=out,
                        workers=config.max_concurrency, on_progress=on_progress,
                        on_wait=on_wait, retry_failed=retry_failed,
                        stop_after_transport=max(10, 2 * config.max_concurrency),
                    )  # fmt: skip
                wall_s = time.perf_counter() - start
            except KeyboardInterrupt:  # the calls still in flight are dropped by close()
                interrupted(samples, out, resume())
            summary = summarize(bench, samples, results, wall_s=wall_s, ran=ran, run_dir=out,
                                params=params)  # fmt: skip
    finally:
        llm.close()
    typer.echo(json.dumps(summary["metrics"], indent=2))
    rate = f"{ran / wall_s:.2f}" if wall_s > 0 else "-"
    typer.echo(
        f"{summary['succeeded']}/{summary['samples']} ok, {summary['failed']} failed; {ran} run "
        f"in {wall_s:.1f} s ({rate} samples/s); report: {out / 'report.md'}"
    )
    echo_replicas(llm)
    check_failures(out, samples, results, limit_failures, config.max_failures)


def _text_embedder_for(bench: Benchmark[Any]) -> TextEmbedder | None:
    """The bundled MiniLM for a benchmark that ``needs_text_embedder`` (segment relevance), else
    None; the model loads on the first query it embeds."""
    if not getattr(bench, "needs_text_embedder", False):
        return None
    from vidagent.retrieval import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


def check_failures(
    out: Path,
    samples: list[Sample],
    results: Mapping[str, SampleResult],
    limit: int | None,
    spec: str | None,
) -> None:
    """Exit non-zero when the run failed: above ``--max-failures`` failed samples, or (without
    that option) any sample that could not reach the LLM."""
    from vidagent.evals.common import EvalError

    mine = [results[s.key] for s in samples if s.key in results]
    failed = [r for r in mine if not r.ok]
    transport = [r for r in failed if r.transport_failure]
    if limit is not None:
        if len(failed) > limit:
            raise EvalError(
                out, f"{len(failed)} of {len(samples)} samples failed, more than --max-failures "
                f"{spec} allows ({limit})",
            )  # fmt: skip
    elif transport:
        raise EvalError(
            out,
            f"{len(transport)} of {len(samples)} samples could not reach the LLM "
            f"({transport[-1].error}); they are saved as failed, and the same command retries "
            "them once the server answers",
        )


def interrupted(samples: list[Sample], out: Path, command: str) -> NoReturn:
    """Ctrl-C: one line with what is saved and how to resume; exit status 130."""
    from vidagent.evals.results import RESULTS, load_results
    from vidagent.evals.runner import to_run

    left = len(to_run(samples, load_results(out / RESULTS).results))
    typer.echo(
        f"interrupted: {len(samples) - left} of {len(samples)} samples saved in {out}; "
        f"resume with: {command}",
        err=True,
    )
    raise typer.Exit(130)


@contextmanager
def run_progress(
    enabled: bool, status: RunStatus
) -> Iterator[tuple[Progress | None, Callable[[Waiting], None] | None]]:
    """The CLI's progress bar (on stderr), fed by the runner's ``on_progress(done, total)`` and
    ``on_wait`` heartbeat: while no result comes, the bar says what it waits for."""
    if not enabled:
        yield None, None
        return
    from vidagent.cli.progress import steps_progress

    with steps_progress("samples") as bar:
        last = [0, 0]

        def on_progress(done: int, total: int) -> None:
            last[:] = [done, total]
            bar(done, total, status=status.retries())

        def on_wait(waiting: Waiting) -> None:
            bar(last[0], last[1], status=status.waiting(waiting.in_flight, waiting.idle_s))

        yield on_progress, on_wait


def echo_replicas(llm: LLMClient) -> None:
    """One line per server when there are several: how the requests were spread."""
    stats = getattr(llm.backend, "stats", None)
    replicas = stats() if stats is not None else []
    if len(replicas) > 1:
        for r in replicas:
            typer.echo(f"replica {r.url}: {r.sent} requests, {r.failed} failed")
