"""Benchmarks from Python: score an official prediction file, list what is there.

``vidagent eval score`` is this function; runs (``eval run``) stay on the command line, which owns
their run folder, resume and report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vidagent.core.errors import ConfigError
from vidagent.evals.benchmark import Params
from vidagent.evals.registry import benchmark, benchmark_names


def benchmarks() -> list[str]:
    """The benchmarks this install has (one module each in ``vidagent.evals.benchmarks``)."""
    return benchmark_names()


def score(
    name: str,
    annotations: str | Path,
    predictions: str | Path,
    *,
    z: int | None = None,
    candidates: int | None = None,
    observed: int | None = None,
) -> dict[str, Any]:
    """The official metrics of ``predictions`` (the benchmark's submission format) against
    ``annotations``, as the official evaluation code computes them (e.g. ``score("nextqa",
    "val.csv", "predictions.json")["Acc"]``). ``z`` / ``candidates`` / ``observed`` only for the
    benchmarks that read them (Ego4D LTA); giving one to another benchmark is an error."""
    bench = benchmark(name)
    params = Params(z=z, candidates=candidates, observed=observed)
    for given in params.given():
        if given not in bench.uses:
            raise ConfigError(f"{given}= does not apply to {bench.name}")
    return dict(bench.score_files(annotations, predictions, params))
