"""vidagent's benchmarks: one module per benchmark (loading, samples, official scoring).

``evals.registry.benchmark(name)`` returns a benchmark module; :mod:`evals.runner` runs one
through the agent (resumable, concurrent) and :mod:`evals.report` writes its summary.
"""

from evals.common import EvalError, Sample
from evals.registry import BENCHMARK_NAMES, benchmark

__all__ = ["BENCHMARK_NAMES", "EvalError", "Sample", "benchmark"]
