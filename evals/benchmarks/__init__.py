"""The benchmarks, one module each; every module exports ``BENCHMARK`` (a
:class:`~vidagent.evals.benchmark.Benchmark`) and :mod:`vidagent.evals.registry` finds it here.

Each module's docstring names the benchmark's source, split, answer format, metric and caveats.
"""
