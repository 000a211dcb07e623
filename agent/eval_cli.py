"""``vidagent eval score`` / ``eval run``: score official prediction files; run a benchmark.

Thin commands over :mod:`evals`: ``score`` reads a benchmark's annotations and its official
prediction/submission format and prints the metrics as one JSON object; ``run`` answers a
benchmark's samples with the agent (see :mod:`evals.runner`). Errors are one line through
``agent.cli.main``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from evals.registry import BENCHMARK_NAMES

app = typer.Typer(help="Score and run benchmarks.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Score and run benchmarks."""


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
) -> None:
    """Score a prediction file the way the official script does; print JSON metrics."""
    from evals.registry import benchmark

    module = benchmark(task)
    metrics = module.score_files(annotations, predictions)
    typer.echo(json.dumps(metrics, indent=2))
