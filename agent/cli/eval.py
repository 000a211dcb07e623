"""``vidagent eval score`` / ``eval run``: score official prediction files; run a benchmark.

Thin commands over :mod:`vidagent.evals`: ``score`` reads a benchmark's annotations and its
official prediction/submission format and prints the metrics as one JSON object; ``run`` answers a
benchmark's samples with the agent (see :mod:`vidagent.evals.runner`) and draws its progress bar
from the runner's progress callback. The benchmarks are the ones the registry finds; what one needs
(a taxonomy, Z or K) is read from the benchmark object, never from its name. Errors are one line
through ``vidagent.cli.main.main``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from vidagent.cli.options import BankOpt, DeviceOpt, LLMUrlOpt, MaxTimelineCharsOpt
from vidagent.evals.benchmark import Benchmark, Param, Params
from vidagent.evals.registry import benchmark_names, users_of

app = typer.Typer(help="Score and run benchmarks.", no_args_is_help=True)

# The option of each benchmark setting; options declare a metavar (flags: "", they take no value).
FLAGS: Mapping[Param, str] = {"z": "--z", "candidates": "--candidates", "observed": "--n-observed"}


def names_help(prefix: str, names: list[str]) -> str:
    """``prefix`` and the names the registry finds now. Help texts call this inside the command
    signatures, whose annotations typer evaluates when it builds the command (postponed
    annotations), so --help lists the benchmarks found at that moment."""
    return f"{prefix} {', '.join(names) or 'none'}."


def setting_help(text: str, param: Param) -> str:
    return names_help(f"{text}; for", users_of(param))


def check_settings(bench: Benchmark[Any], params: Params) -> None:
    """A setting given for a benchmark that does not read it is a mistake, not a no-op."""
    from vidagent.core.errors import ConfigError

    for name in params.given():
        if name not in bench.uses:
            users = ", ".join(users_of(name)) or "no benchmark"
            raise ConfigError(f"{FLAGS[name]} does not apply to {bench.name} (only to {users})")


@app.command()
def score(
    task: Annotated[
        str,
        typer.Argument(metavar="BENCHMARK", help=names_help("Benchmark:", benchmark_names())),
    ],
    annotations: Annotated[
        Path, typer.Option("--annotations", help="The benchmark's annotation file.", metavar="FILE")
    ],
    predictions: Annotated[
        Path,
        typer.Option("--predictions", help="Predictions in the official format.", metavar="FILE"),
    ],
    z: Annotated[
        int | None,
        typer.Option(
            "--z", min=1, metavar="N",
            help=setting_help("Future actions scored, Z of ED@Z (official: 20)", "z"),
        ),
    ] = None,
) -> None:  # fmt: skip
    """Score a prediction file the way the official script does; print JSON metrics."""
    from vidagent.evals.registry import benchmark

    bench = benchmark(task)
    params = Params(z=z)
    check_settings(bench, params)
    typer.echo(json.dumps(bench.score_files(annotations, predictions, params), indent=2))


@app.command()
def run(
    task: Annotated[
        str,
        typer.Argument(metavar="BENCHMARK", help=names_help("Benchmark:", benchmark_names())),
    ],
    annotations: Annotated[
        Path, typer.Option("--annotations", help="Annotation file.", metavar="FILE")
    ],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Run directory (resumed if it exists).", metavar="DIR"),
    ],
    videos: Annotated[
        Path | None,
        typer.Option("--videos", help="Folder of <video_id>.mp4 (perceived).", metavar="DIR"),
    ] = None,
    timelines: Annotated[
        Path | None,
        typer.Option("--timelines", help="Folder of <video_id>.json timelines.", metavar="DIR"),
    ] = None,
    captions: Annotated[
        Path | None,
        typer.Option(
            "--captions",
            help='Captions JSON {video_id: [{"start","end","caption"}]}.',
            metavar="FILE",
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, metavar="N", help="First N samples.")
    ] = None,
    llm_url: LLMUrlOpt = None,
    llm_model: Annotated[
        str | None, typer.Option("--llm-model", metavar="MODEL", help="LLM model.")
    ] = None,
    max_concurrency: Annotated[
        int, typer.Option("--max-concurrency", min=1, metavar="N", help="Samples in flight.")
    ] = 16,
    max_retries: Annotated[
        int,
        typer.Option("--max-retries", min=0, metavar="N", help="Retries of a failed LLM call."),
    ] = 3,
    timeout_s: Annotated[
        float, typer.Option("--timeout", metavar="SECONDS", help="Seconds per LLM call.")
    ] = 120.0,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="No LLM response cache.", metavar="")
    ] = False,
    max_timeline_chars: MaxTimelineCharsOpt = 4000,
    taxonomy: Annotated[
        Path | None,
        typer.Option(
            "--taxonomy", help="Verb/noun taxonomy JSON (needed by some benchmarks; with "
            "--videos it also labels the actions).", metavar="FILE",
        ),
    ] = None,
    z: Annotated[
        int | None,
        typer.Option(
            "--z", min=1, metavar="N",
            help=setting_help("Future actions per prediction, Z of ED@Z (default 20)", "z"),
        ),
    ] = None,
    candidates: Annotated[
        int | None,
        typer.Option(
            "--candidates", "-K", min=1, metavar="K",
            help=setting_help("Candidates per sample (default 5)", "candidates"),
        ),
    ] = None,
    bank: BankOpt = None,
    examples: Annotated[
        int | None,
        typer.Option(
            "--examples", min=0, metavar="N",
            help="In-context examples per prompt (needs --bank; default 3 with it).",
        ),
    ] = None,
    retry_failed: Annotated[
        bool,
        typer.Option("--retry-failed", help="On resume, run failed samples again.", metavar=""),
    ] = False,
    captioner: Annotated[
        str | None,
        typer.Option(
            "--captioner", metavar="MODEL", help="--videos: captioning VLM (hub id/folder)."
        ),
    ] = None,
    embedder: Annotated[
        str | None,
        typer.Option(
            "--embedder", metavar="MODEL", help="--videos: CLIP/SigLIP model (hub id/folder)."
        ),
    ] = None,
    seconds: Annotated[
        float,
        typer.Option(
            "--seconds", min=0.1, metavar="SECONDS", help="--videos: segment length (s)."
        ),
    ] = 2.0,
    device: DeviceOpt = "auto",
    max_failures: Annotated[
        str | None,
        typer.Option(
            "--max-failures", metavar="N|FRACTION",
            help="Fail the run above N failed samples or a fraction (0.1, 10%).",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Resume despite a changed config.", metavar="")
    ] = False,
    progress: Annotated[
        bool,
        typer.Option("--progress/--no-progress", help="Progress bar on stderr.", metavar=""),
    ] = True,
) -> None:  # fmt: skip
    """Answer a benchmark's samples with the agent; resumable; writes summary + report."""
    import time

    from vidagent.core.errors import ConfigError
    from vidagent.evals.common import EvalError, read_taxonomy
    from vidagent.evals.registry import benchmark
    from vidagent.evals.report import summarize
    from vidagent.evals.runner import (
        RESULTS,
        RunConfig,
        Solver,
        check_config,
        failure_limit,
        read_results,
        run_samples,
        to_run,
    )
    from vidagent.tools.captioner import DEFAULT_CAPTIONER
    from vidagent.tools.visual_embedder import DEFAULT_VISUAL_MODEL

    bench = benchmark(task)
    check_settings(bench, Params(z=z, candidates=candidates))
    given = [(n, p) for n, p in (("videos", videos), ("timelines", timelines),
                                 ("captions", captions)) if p is not None]  # fmt: skip
    if len(given) != 1:
        raise ConfigError("give exactly one of --videos, --timelines, --captions")
    if bank is None and examples:
        raise ConfigError(
            "--examples needs --bank (an example bank folder from vidagent index build); "
            f"got --examples {examples} and no --bank"
        )
    if bank is not None and not bank.is_dir():
        raise ConfigError(f"--bank {bank}: not a directory")
    if bench.taxonomy_file and taxonomy is None:
        raise ConfigError(f"{bench.name} needs --taxonomy {bench.taxonomy_file}")
    perceived = given[0][0] == "videos"
    sizes = {k: v for k, v in (("lta_z", z), ("lta_k", candidates)) if v is not None}
    config = RunConfig(
        task=bench.name, annotations=str(annotations.resolve()),
        source=f"{given[0][0]}:{given[0][1].resolve()}", limit=limit, llm_urls=list(llm_url or []),
        llm_model=llm_model, max_concurrency=max_concurrency,
        max_timeline_chars=max_timeline_chars, **sizes,
        taxonomy=str(taxonomy.resolve()) if taxonomy else None, max_failures=max_failures,
        bank=str(bank.resolve()) if bank else None,
        k=(3 if examples is None else examples) if bank else 0,
        captioner=(captioner or DEFAULT_CAPTIONER) if perceived else None,
        embedder=(embedder or DEFAULT_VISUAL_MODEL) if perceived else None,
        seconds=seconds if perceived else None,
    )  # fmt: skip
    params = Params(z=config.lta_z, candidates=config.lta_k)
    samples = bench.load_samples(annotations, params)[:limit]
    limit_failures = failure_limit(max_failures, len(samples))
    check_config(out, config, force)
    source = _source(given[0][0], given[0][1], config, taxonomy, device)
    tax = read_taxonomy(taxonomy) if taxonomy is not None else None
    llm = _llm(config, max_retries, timeout_s, no_cache)
    start = time.perf_counter()
    ran = len(to_run(samples, read_results(out / RESULTS), retry_failed))
    try:
        with _progress(progress) as on_progress:
            results = run_samples(
                samples, source=source, solve=Solver(llm, config, tax, _bank(bank)),
                run_dir=out, workers=max_concurrency, on_progress=on_progress,
                retry_failed=retry_failed,
            )  # fmt: skip
    finally:
        llm.close()
    summary = summarize(
        bench, samples, results, wall_s=time.perf_counter() - start, ran=ran, run_dir=out,
        params=params,
    )  # fmt: skip
    typer.echo(json.dumps(summary["metrics"], indent=2))
    typer.echo(
        f"{summary['succeeded']}/{summary['samples']} ok, {summary['failed']} failed; "
        f"report: {out / 'report.md'}"
    )
    _echo_replicas(llm)
    if limit_failures is not None and summary["failed"] > limit_failures:
        raise EvalError(out, f"{summary['failed']} samples failed (limit {limit_failures})")


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """The CLI's progress bar (on stderr), fed by the runner's ``on_progress(done, total)``."""
    if not enabled:
        yield None
        return
    from vidagent.cli.progress import steps_progress

    with steps_progress("samples") as on_progress:
        yield on_progress


def _llm(config: Any, max_retries: int, timeout_s: float, no_cache: bool) -> Any:
    from vidagent.api.deps import check_model_available
    from vidagent.llm.config import LLMConfig, build_backend

    cfg = config  # RunConfig
    urls = list(getattr(cfg, "llm_urls", []))
    model = getattr(cfg, "llm_model", None)
    llm_config = LLMConfig(
        urls=urls, model=model, hf_model=None if urls else model, max_retries=max_retries,
        timeout_s=timeout_s, cache=not no_cache,
        max_concurrency=getattr(cfg, "max_concurrency", 16),
    )  # fmt: skip
    if not urls and model:
        check_model_available(model)
    return build_backend(llm_config)


def _echo_replicas(llm: Any) -> None:
    """One line per server when there are several: how the requests were spread."""
    stats = getattr(llm.backend, "stats", None)
    replicas = stats() if stats is not None else []
    if len(replicas) > 1:
        for r in replicas:
            typer.echo(f"replica {r.url}: {r.sent} requests, {r.failed} failed")


def _bank(directory: Path | None) -> Any:
    if directory is None:
        return None
    from vidagent.retrieval import ExampleBank, SentenceTransformerEmbedder

    return ExampleBank.load(directory, SentenceTransformerEmbedder())


def _source(kind: str, path: Path, config: Any, taxonomy: Path | None, device: str) -> Any:
    from vidagent.evals.sources import CaptionsFile, TimelineDir

    if kind == "timelines":
        return TimelineDir(path)
    if kind == "captions":
        return CaptionsFile(path)
    return _video_source(path, config, taxonomy, device)


def _video_source(directory: Path, config: Any, taxonomy: Path | None, device: str) -> Any:
    """Perceive ``<dir>/<video_id>.*`` on first use (cached in the perception store); for LTA the
    action recognizer labels segments with the benchmark's own taxonomy."""
    import threading

    from vidagent.api.deps import perceive_video
    from vidagent.core.settings import load_settings
    from vidagent.evals.common import EvalError
    from vidagent.store.perception import PerceptionStore

    if not directory.is_dir():
        raise EvalError(directory, "not a directory of videos")
    store = PerceptionStore(load_settings().store_dir)
    lock = threading.Lock()  # perception models are loaded once and used by one thread at a time

    def get(video_id: str) -> Any:
        matches = sorted(directory.glob(f"{video_id}.*"))
        if not matches:
            raise EvalError(directory, f"no video file for {video_id!r}")
        with lock:
            timeline, _ = perceive_video(
                matches[0], captioner=config.captioner, captioner_url=None,
                embedder=config.embedder, taxonomy=taxonomy, seconds=config.seconds,
                device=device, store=store,
            )  # fmt: skip
        return timeline

    return get
