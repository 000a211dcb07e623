"""The installed package: one import package `vidagent`, its data files, and the layer contract.

The package is built and installed (not editable) into a temp folder, as `pip install .` does, and
inspected from a process that does not see the checkout, so what is tested is what users get.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCE_ROOTS = {"agent": "vidagent", "tools": "vidagent.tools", "evals": "vidagent.evals",
                "prompts": "vidagent.prompts"}  # fmt: skip


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("src")
    # Build from a copy so the checkout gets no build/ or egg-info folders.
    ignore = shutil.ignore_patterns(".venv*", ".git", "test-artifacts", "__pycache__", "*.egg-info")
    src = build / "vidagent"
    shutil.copytree(REPO, src, ignore=ignore)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(src)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return target


def _run(code: str, site: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True
    )


def source_packages() -> set[str]:
    """Every package in the checkout (a folder with ``__init__.py``), by its import name."""
    names = set()
    for folder, name in SOURCE_ROOTS.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder).parts
            names.add(".".join([name, *rel]))
    return names


def test_site_packages_holds_vidagent_and_nothing_else_of_ours(installed: Path) -> None:
    top = {p.name for p in installed.iterdir()}
    ours = {n for n in top if n != "bin" and not n.endswith(".dist-info")}
    assert ours == {"vidagent"}, top
    for generic in ("agent", "tools", "evals", "prompts", "tests", "bench"):
        assert not (installed / generic).exists()


def test_every_source_package_is_in_the_wheel(installed: Path) -> None:
    built = {
        ".".join(init.parent.relative_to(installed).parts)
        for init in (installed / "vidagent").rglob("__init__.py")
    }
    assert built == source_packages(), "add new packages to [tool.setuptools] packages"


def test_import_vidagent_from_the_install(installed: Path, tmp_path: Path) -> None:
    code = (
        "import json, sys, vidagent, vidagent.tools, vidagent.evals, vidagent.prompts\n"
        "from vidagent.prompts.loader import load_prompt\n"
        "load_prompt('qa_choice')\n"
        "heavy = [m for m in ('torch', 'transformers', 'faiss', 'vllm', 'decord', 'ray')"
        " if m in sys.modules]\n"
        "print(json.dumps({'file': vidagent.__file__, 'tools': vidagent.tools.__file__,"
        " 'heavy': heavy}))\n"
    )
    proc = _run(code, installed, tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["file"].startswith(str(installed)) and out["tools"].startswith(str(installed))
    assert out["heavy"] == [], "importing vidagent must not load heavy libraries"
    static = installed / "vidagent" / "web" / "static"
    assert {"index.html", "app.js", "style.css"} <= {p.name for p in static.iterdir()}


def test_layer_contract_holds(installed: Path, tmp_path: Path) -> None:
    """`lint-imports` with pyproject.toml's contract (layers; only the CLI imports typer/rich)."""
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.fail("lint-imports is missing: pip install -e '.[dev]'")
    env = {**os.environ, "PYTHONPATH": str(installed)}
    proc = subprocess.run(
        [str(lint), str(REPO / "pyproject.toml")], cwd=tmp_path, env=env,
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


CYCLES = """
import json, grimp
graph = grimp.build_graph("vidagent")
modules = sorted(graph.modules)
edges = {m: sorted(set(graph.find_modules_directly_imported_by(m)) & set(modules)) for m in modules}
index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]
def visit(v):
    index[v] = low[v] = counter[0]; counter[0] += 1; stack.append(v); on.add(v)
    for w in edges[v]:
        if w not in index:
            visit(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        group = []
        while True:
            w = stack.pop(); on.discard(w); group.append(w)
            if w == v: break
        if len(group) > 1: cycles.append(sorted(group))
for m in modules:
    if m not in index: visit(m)
print(json.dumps(cycles))
"""


def test_no_import_cycles(installed: Path, tmp_path: Path) -> None:
    """No group of modules imports each other in a circle (imports inside functions included)."""
    proc = _run(CYCLES, installed, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
