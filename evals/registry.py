"""The benchmarks, found by scanning packages: every module of :data:`PACKAGES` whose name does not
start with ``_`` must export ``BENCHMARK``, a :class:`~vidagent.evals.benchmark.Benchmark`.

Adding a benchmark is adding such a module; nothing else lists benchmark names. Modules are
imported on the first look-up (not when this module is imported).
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from vidagent.evals.benchmark import Benchmark, Param
from vidagent.evals.common import EvalError

PACKAGES: list[str] = ["vidagent.evals.benchmarks"]


def discover() -> dict[str, Benchmark[Any]]:
    """Every benchmark of :data:`PACKAGES`, by name, in module-name order."""
    found: dict[str, Benchmark[Any]] = {}
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            if info.name.startswith("_"):
                continue
            module_name = f"{package_name}.{info.name}"
            obj = getattr(importlib.import_module(module_name), "BENCHMARK", None)
            if not isinstance(obj, Benchmark):
                raise EvalError(module_name, "a benchmark module must export BENCHMARK")
            if obj.name in found:
                raise EvalError(module_name, f"a second benchmark named {obj.name!r}")
            found[obj.name] = obj
    return found


def benchmark_names() -> list[str]:
    return list(discover())


def benchmark(name: str) -> Benchmark[Any]:
    """The benchmark called ``name``; an unknown name is an error listing the known ones."""
    found = discover()
    if name not in found:
        raise EvalError(name, f"unknown benchmark (choose from {', '.join(found)})")
    return found[name]


def bank_formats() -> list[str]:
    """The benchmarks that give in-context examples for an example bank."""
    return [name for name, b in discover().items() if b.bank_task is not None]


def users_of(param: Param) -> list[str]:
    """The benchmarks that read the setting ``param``."""
    return [name for name, b in discover().items() if param in b.uses]
