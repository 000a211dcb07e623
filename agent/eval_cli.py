"""``vidagent eval score`` / ``eval run``: score official prediction files; run a benchmark.

Thin commands over :mod:`evals`: ``score`` reads a benchmark's annotations and its official
prediction/submission format and prints the metrics as one JSON object; ``run`` answers a
benchmark's samples with the agent (see :mod:`evals.runner`). Errors are one line through
``agent.cli.main``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from evals.registry import BENCHMARK_NAMES

app = typer.Typer(help="Score and run benchmarks.", no_args_is_help=True)


TaskArg = Annotated[str, typer.Argument(help=f"Benchmark: {', '.join(BENCHMARK_NAMES)}.")]


@app.command()
def score(
    task: TaskArg,
    annotations: Annotated[
        Path, typer.Option("--annotations", help="The benchmark's annotation file.")
    ],
    predictions: Annotated[
        Path, typer.Option("--predictions", help="Predictions in the official format.")
    ],
    z: Annotated[
        int | None,
        typer.Option("--z", min=1, help="ego4d_lta only: future actions scored (official: 20)."),
    ] = None,
) -> None:
    """Score a prediction file the way the official script does; print JSON metrics."""
    from agent.errors import ConfigError
    from evals.registry import benchmark

    module = benchmark(task)
    if z is not None:
        if task != "ego4d_lta":
            raise ConfigError(f"--z applies to ego4d_lta only, not {task}")
        metrics = module.score_files(annotations, predictions, z=z)
    else:
        metrics = module.score_files(annotations, predictions)
    typer.echo(json.dumps(metrics, indent=2))


@app.command()
def run(
    task: TaskArg,
    annotations: Annotated[Path, typer.Option("--annotations", help="Annotation file.")],
    out: Annotated[Path, typer.Option("--out", help="Run directory (resumed if it exists).")],
    videos: Annotated[
        Path | None, typer.Option("--videos", help="Folder of <video_id>.mp4 (perceived).")
    ] = None,
    timelines: Annotated[
        Path | None, typer.Option("--timelines", help="Folder of <video_id>.json timelines.")
    ] = None,
    captions: Annotated[
        Path | None,
        typer.Option("--captions", help='Captions JSON {video_id: [{"start","end","caption"}]}.'),
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="First N samples.")] = None,
    llm_url: Annotated[
        list[str] | None, typer.Option("--llm-url", help="OpenAI-compatible server (repeat).")
    ] = None,
    llm_model: Annotated[str | None, typer.Option("--llm-model", help="LLM model.")] = None,
    max_concurrency: Annotated[
        int, typer.Option("--max-concurrency", min=1, help="Samples in flight.")
    ] = 16,
    max_retries: Annotated[int, typer.Option("--max-retries", min=0)] = 3,
    timeout_s: Annotated[float, typer.Option("--timeout", help="Seconds per LLM call.")] = 120.0,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="No LLM response cache.")] = False,
    max_timeline_chars: Annotated[int, typer.Option("--max-timeline-chars", min=40)] = 4000,
    taxonomy: Annotated[
        Path | None, typer.Option("--taxonomy", help="fho_lta_taxonomy.json (ego4d_lta).")
    ] = None,
    z: Annotated[int, typer.Option("--z", min=1, help="LTA: future actions (Z of ED@Z).")] = 20,
    k: Annotated[int, typer.Option("--k", min=1, help="LTA: candidates per window.")] = 5,
    bank: Annotated[
        Path | None,
        typer.Option("--bank", help="Example bank folder (vidagent index build): few-shot."),
    ] = None,
    examples: Annotated[
        int, typer.Option("--examples", min=0, help="With --bank: in-context examples per prompt.")
    ] = 3,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="On resume, run failed samples again.")
    ] = False,
    captioner: Annotated[
        str | None, typer.Option("--captioner", help="--videos: captioning VLM (hub id/folder).")
    ] = None,
    embedder: Annotated[
        str | None, typer.Option("--embedder", help="--videos: CLIP/SigLIP model (hub id/folder).")
    ] = None,
    seconds: Annotated[
        float, typer.Option("--seconds", min=0.1, help="--videos: segment length (s).")
    ] = 2.0,
    device: Annotated[str, typer.Option("--device", help="--videos: auto, cpu, cuda.")] = "auto",
    max_failures: Annotated[
        str | None, typer.Option("--max-failures", help="Fail the run above N or a fraction.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Resume despite a changed config.")
    ] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Answer a benchmark's samples with the agent; resumable; writes summary + report."""
    import time

    from agent.errors import ConfigError
    from evals.common import EvalError
    from evals.registry import benchmark
    from evals.report import summarize
    from evals.runner import (
        RESULTS,
        RunConfig,
        Solver,
        check_config,
        failure_limit,
        read_results,
        run_samples,
        to_run,
    )
    from tools.captioner import DEFAULT_CAPTIONER
    from tools.embedder import DEFAULT_VISUAL_MODEL

    given = [(n, p) for n, p in (("videos", videos), ("timelines", timelines),
                                 ("captions", captions)) if p is not None]  # fmt: skip
    if len(given) != 1:
        raise ConfigError("give exactly one of --videos, --timelines, --captions")
    if bank is not None and not bank.is_dir():
        raise ConfigError(f"--bank {bank}: not a directory")
    if task == "ego4d_lta" and taxonomy is None:
        raise ConfigError("ego4d_lta needs --taxonomy fho_lta_taxonomy.json")
    module = benchmark(task)
    perceived = given[0][0] == "videos"
    config = RunConfig(
        task=task, annotations=str(annotations.resolve()),
        source=f"{given[0][0]}:{given[0][1].resolve()}", limit=limit, llm_urls=list(llm_url or []),
        llm_model=llm_model, max_concurrency=max_concurrency,
        max_timeline_chars=max_timeline_chars, lta_z=z, lta_k=k,
        taxonomy=str(taxonomy.resolve()) if taxonomy else None, max_failures=max_failures,
        bank=str(bank.resolve()) if bank else None, k=examples if bank else 0,
        captioner=(captioner or DEFAULT_CAPTIONER) if perceived else None,
        embedder=(embedder or DEFAULT_VISUAL_MODEL) if perceived else None,
        seconds=seconds if perceived else None,
    )  # fmt: skip
    if task == "ego4d_lta":
        samples = module.load_samples(annotations, z=z)[:limit]
    else:
        samples = module.load_samples(annotations)[:limit]
    limit_failures = failure_limit(max_failures, len(samples))
    check_config(out, config, force)
    source = _source(given[0][0], given[0][1], config, taxonomy, device)
    llm = _llm(config, max_retries, timeout_s, no_cache)
    tax = None
    if taxonomy is not None:
        from evals.ego4d_lta import read_taxonomy

        tax = read_taxonomy(taxonomy)
    start = time.perf_counter()
    ran = len(to_run(samples, read_results(out / RESULTS), retry_failed))
    try:
        results = run_samples(
            samples, source=source, solve=Solver(llm, config, tax, _bank(bank)), run_dir=out,
            workers=max_concurrency, progress=progress, retry_failed=retry_failed,
        )  # fmt: skip
    finally:
        llm.close()
    summary = summarize(
        task, samples, results, wall_s=time.perf_counter() - start, ran=ran, run_dir=out,
        lta_z=z,
    )  # fmt: skip
    typer.echo(json.dumps(summary["metrics"], indent=2))
    typer.echo(
        f"{summary['succeeded']}/{summary['samples']} ok, {summary['failed']} failed; "
        f"report: {out / 'report.md'}"
    )
    _echo_replicas(llm)
    if limit_failures is not None and summary["failed"] > limit_failures:
        raise EvalError(out, f"{summary['failed']} samples failed (limit {limit_failures})")


def _llm(config: Any, max_retries: int, timeout_s: float, no_cache: bool) -> Any:
    from agent.deps import check_model_available
    from agent.llm.config import LLMConfig, build_backend

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
    from agent.retrieval import ExampleBank, SentenceTransformerEmbedder

    return ExampleBank.load(directory, SentenceTransformerEmbedder())


def _source(kind: str, path: Path, config: Any, taxonomy: Path | None, device: str) -> Any:
    from evals.sources import CaptionsFile, TimelineDir

    if kind == "timelines":
        return TimelineDir(path)
    if kind == "captions":
        return CaptionsFile(path)
    return _video_source(path, config, taxonomy, device)


def _video_source(directory: Path, config: Any, taxonomy: Path | None, device: str) -> Any:
    """Perceive ``<dir>/<video_id>.*`` on first use (cached in the perception store); for LTA the
    action recognizer labels segments with the benchmark's own taxonomy."""
    import threading

    from agent.deps import perceive_video
    from agent.settings import load_settings
    from agent.store import PerceptionStore
    from evals.common import EvalError

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
