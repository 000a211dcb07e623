"""The public Python API: ``import vidagent`` and the names the README's example uses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import vidagent
from vidagent.core.errors import ConfigError

DATA = Path(__file__).resolve().parent / "data"


def test_the_readme_names_are_there() -> None:
    for name in ("perceive", "ask", "anticipate", "localize", "score", "LLMSettings",
                 "PerceptionConfig", "Timeline", "benchmarks"):  # fmt: skip
        assert name in vidagent.__all__ and getattr(vidagent, name) is not None
    with pytest.raises(AttributeError):
        vidagent.no_such_thing  # noqa: B018


def test_import_vidagent_is_cheap() -> None:
    code = "import sys, vidagent; print(sorted(m for m in sys.modules if m.startswith('vidagent')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['vidagent']"


def test_score_is_the_official_metric_from_python() -> None:
    metrics = vidagent.score(
        "nextqa", DATA / "nextqa" / "val.csv", DATA / "nextqa" / "HGA-bert-ft-h256-val-example.json"
    )
    assert metrics["Acc"] == pytest.approx(49.74, abs=0.005)  # official eval_mc.py
    assert "nextqa" in vidagent.benchmarks()


def test_score_refuses_a_setting_the_benchmark_does_not_read() -> None:
    with pytest.raises(ConfigError, match="z= does not apply to nextqa"):
        vidagent.score("nextqa", DATA / "nextqa" / "val.csv", DATA / "nextqa" / "val.csv", z=20)


def readme_python() -> str:
    """The README's "From Python" example, as written."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### From Python") :]
    start = section.index("```python\n") + len("```python\n")
    return section[start : section.index("\n```", start)]


@pytest.mark.slow
def test_the_readme_python_example_runs(tmp_path: Path) -> None:
    import shutil

    from vidagent.testing.synth import write_video

    write_video(tmp_path / "video.mp4", seconds=6, fps=10, width=160, height=120, cuts=[30])
    shutil.copy(DATA / "nextqa" / "val.csv", tmp_path / "val.csv")
    shutil.copy(DATA / "nextqa" / "HGA-bert-ft-h256-val-example.json",
                tmp_path / "predictions.json")  # fmt: skip
    script = tmp_path / "example.py"
    script.write_text(readme_python(), encoding="utf-8")
    import os

    env = {**os.environ, "VIDAGENT_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("<seg_0> 0.0 2.0 ") and lines[-1] == "49.74"
