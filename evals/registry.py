"""The benchmarks by name: each a module with ``NAME``, ``load_samples``, ``read_predictions``,
``score`` and ``score_files`` (see each module's docstring for source, split, format and metric)."""

from __future__ import annotations

from types import ModuleType

from evals.common import EvalError

BENCHMARK_NAMES = ("nextqa", "intentqa", "egoschema", "ego4d_lta", "charades_sta", "qvhighlights")


def benchmark(name: str) -> ModuleType:
    """The module of benchmark ``name`` (imported on first use)."""
    import importlib

    if name not in BENCHMARK_NAMES:
        raise EvalError(name, f"unknown benchmark (choose from {', '.join(BENCHMARK_NAMES)})")
    return importlib.import_module(f"evals.{name}")
