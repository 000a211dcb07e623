"""``vidagent eval score`` / ``eval run``: score official prediction files; run a benchmark.

Thin commands over :mod:`vidagent.evals`: ``score`` reads a benchmark's annotations and its
official prediction/submission format and prints the metrics as one JSON object (a file that
answers none of the samples is an error; partial coverage is shown on stderr; a benchmark scored
from two official files takes the second with ``--qa-predictions``); ``run`` answers a
benchmark's samples with the agent (see :mod:`vidagent.evals.runner`) and draws its progress bar
from the runner's callbacks. The benchmarks are the ones the registry finds; what one needs (a
taxonomy, Z or K) is read from the benchmark object, never from its name. Errors are one line
through ``vidagent.cli.main.main``.

``run`` locks its run folder (a second run on it is refused, naming the first's PID), probes the
LLM server before it sends anything, fails (exit 2) when samples could not reach the LLM (or when
more than ``--max-failures`` failed), and on Ctrl-C prints what was saved and the command that
resumes (exit 130).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vidagent.cli.bounds import above, at_least
from vidagent.cli.options import BankOpt, DeviceOpt, LLMUrlOpt, MaxTimelineCharsOpt
from vidagent.evals.benchmark import Benchmark, Param, Params
from vidagent.evals.registry import benchmark_names, users_of

if TYPE_CHECKING:
    from vidagent.evals.runner import RunConfig
    from vidagent.llm import LLMClient

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
            "--z", callback=at_least(1), metavar="N",
            help=setting_help("Future actions scored, Z of ED@Z (>= 1; official: 20)", "z"),
        ),
    ] = None,
    qa_predictions: Annotated[
        Path | None,
        typer.Option(
            "--qa-predictions", metavar="FILE",
            help=names_help("The second official prediction file (QA results {key: "
                            "{prediction, answer}}) of a benchmark scored from two; for",
                            companion_users()),
        ),
    ] = None,
) -> None:  # fmt: skip
    """Score a prediction file the way the official script does; print JSON metrics."""
    from vidagent.evals.registry import benchmark

    bench = benchmark(task)
    params = Params(z=z)
    check_settings(bench, params)
    check_companion(bench, qa_predictions)
    scored = bench.scored_files(annotations, predictions, params, companion=qa_predictions)
    typer.echo(json.dumps(scored.metrics, indent=2))
    cover = scored.coverage
    if cover.matched < cover.total:
        typer.echo(
            f"coverage: {cover.matched} of {cover.total} samples have a prediction "
            f"({cover.total - cover.matched} missing, {bench.missing_rule})",
            err=True,
        )


def companion_users() -> list[str]:
    """The benchmarks scored from a second prediction file (``--qa-predictions``)."""
    from vidagent.evals.registry import discover

    return [name for name, b in discover().items() if b.companion_file is not None]


def check_companion(bench: Benchmark[Any], companion: Path | None) -> None:
    """``--qa-predictions`` only for a benchmark with a second prediction file, and always for
    one that needs it."""
    from vidagent.core.errors import ConfigError

    if companion is not None and bench.companion_file is None:
        users = ", ".join(companion_users()) or "no benchmark"
        raise ConfigError(f"--qa-predictions does not apply to {bench.name} (only to {users})")
    if companion is None and bench.companion_required:
        raise ConfigError(
            f"{bench.name} needs --qa-predictions FILE (its QA results, {bench.companion_file} "
            f"of a run, next to {bench.submission_file})"
        )


@app.command()
def run(
    ctx: typer.Context,
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
        int | None,
        typer.Option("--limit", callback=at_least(1), metavar="N", help="First N samples."),
    ] = None,
    llm_url: LLMUrlOpt = None,
    llm_model: Annotated[
        str | None, typer.Option("--llm-model", metavar="MODEL", help="LLM model.")
    ] = None,
    max_concurrency: Annotated[
        int,
        typer.Option("--max-concurrency", callback=at_least(1), metavar="N",
                     help="Samples in flight (>= 1)."),
    ] = 16,
    max_retries: Annotated[
        int,
        typer.Option("--max-retries", callback=at_least(0), metavar="N",
                     help="Retries of a failed LLM call (>= 0)."),
    ] = 3,
    timeout_s: Annotated[
        float,
        typer.Option("--timeout", callback=above(0), metavar="SECONDS",
                     help="Seconds per LLM call (> 0)."),
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
            "--z", callback=at_least(1), metavar="N",
            help=setting_help("Future actions per prediction, Z of ED@Z (default 20)", "z"),
        ),
    ] = None,
    candidates: Annotated[
        int | None,
        typer.Option(
            "--candidates", "-K", callback=at_least(1), metavar="K",
            help=setting_help("Candidates per sample (default 5)", "candidates"),
        ),
    ] = None,
    bank: BankOpt = None,
    examples: Annotated[
        int | None,
        typer.Option(
            "--examples", callback=at_least(0), metavar="N",
            help="In-context examples per prompt (needs --bank; default 3 with it).",
        ),
    ] = None,
    retry_failed: Annotated[
        bool,
        typer.Option("--retry-failed", metavar="",
                     help="On resume, run failed samples again (those that could not reach the "
                     "LLM are always run again)."),
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
            "--seconds", callback=at_least(0.1), metavar="SECONDS",
            help="--videos: segment length (s, >= 0.1).",
        ),
    ] = 2.0,
    device: DeviceOpt = "auto",
    max_failures: Annotated[
        str | None,
        typer.Option(
            "--max-failures", metavar="N|FRACTION",
            help="Fail the run above N failed samples or a fraction (0.1, 10%); default: fail "
            "on any sample that could not reach the LLM.",
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
    from vidagent.cli.eval_run import run_benchmark
    from vidagent.cli.run_display import command_line
    from vidagent.core.errors import ConfigError
    from vidagent.evals.registry import benchmark
    from vidagent.evals.runner import RunConfig
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
    run_benchmark(
        bench, config, out, given[0], build_llm=_llm, taxonomy=taxonomy, bank=bank, device=device,
        llm_options=(max_retries, timeout_s, no_cache), retry_failed=retry_failed, force=force,
        progress=progress, resume=lambda: command_line(ctx, "vidagent eval run"),
    )  # fmt: skip


def _llm(config: RunConfig, max_retries: int, timeout_s: float, no_cache: bool) -> LLMClient:
    from vidagent.api.deps import check_model_available
    from vidagent.core.errors import ConfigError
    from vidagent.llm.config import LLMConfig, build_backend

    urls = list(config.llm_urls)
    model = config.llm_model
    if not urls and not model:
        raise ConfigError(
            "no LLM: give --llm-url (an OpenAI-compatible server such as vllm serve) or "
            "--llm-model (a model to load in this process)"
        )
    llm_config = LLMConfig(
        urls=urls, model=model, hf_model=None if urls else model, max_retries=max_retries,
        timeout_s=timeout_s, cache=not no_cache, max_concurrency=config.max_concurrency,
    )  # fmt: skip
    if not urls and model:
        check_model_available(model)
    return build_backend(llm_config)
