"""vidagent's benchmarks: one object per benchmark, each in its own module of
:mod:`vidagent.evals.benchmarks` (loading, samples, prediction, submission, official scoring, bank
examples; see :class:`~vidagent.evals.benchmark.Benchmark`).

``benchmark(name)`` returns one (:func:`discover` finds them by scanning that package; a name
``benchmarks`` here would be shadowed by the subpackage);
:mod:`vidagent.evals.runner` runs one through the agent (resumable, concurrent) and
:mod:`vidagent.evals.report` writes its summary.
"""

from vidagent.evals.benchmark import (
    Benchmark,
    MetricTable,
    Params,
    Solution,
    SolveContext,
)
from vidagent.evals.common import EvalError, Sample, SampleResult, Taxonomy, read_taxonomy
from vidagent.evals.registry import bank_formats, benchmark, benchmark_names, discover

__all__ = [
    "Benchmark",
    "EvalError",
    "MetricTable",
    "Params",
    "Sample",
    "SampleResult",
    "Solution",
    "SolveContext",
    "Taxonomy",
    "bank_formats",
    "benchmark",
    "benchmark_names",
    "discover",
    "read_taxonomy",
]
