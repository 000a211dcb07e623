"""Shared fixtures: real H.264 / VP9 videos written with PyAV, with known cuts and barcodes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from vidagent.testing.synth import SyntheticVideo, write_video

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REALDATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def video_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="session")
def h264_video(video_dir: Path) -> SyntheticVideo:
    """8 s, 10 fps, 160x120 H.264 with a hard cut at frame 37."""
    return write_video(video_dir / "cut.mp4", seconds=8, fps=10, cuts=[37], gop=12)


@pytest.fixture(scope="session")
def vp9_video(video_dir: Path) -> SyntheticVideo:
    """3 s, 10 fps VP9/WebM with a hard cut at frame 12."""
    return write_video(video_dir / "cut.webm", seconds=3, fps=10, codec="vp9", cuts=[12])


@pytest.fixture(scope="session")
def multi_cut_video(video_dir: Path) -> SyntheticVideo:
    """12 s, 25 fps H.264 with cuts at frames 50, 130 and 210."""
    return write_video(video_dir / "multi.mp4", seconds=12, fps=25, cuts=[50, 130, 210], gop=30)


@pytest.fixture(scope="session")
def isolated_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vidagent_home")


@pytest.fixture(autouse=True)
def _vidagent_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Never touch the user's real cache: every test gets its own VIDAGENT_HOME."""
    monkeypatch.setenv("VIDAGENT_HOME", str(tmp_path_factory.mktemp("home")))


NOT_APPLICABLE = "not applicable here:"
"""Skip reasons that start with this are allowed in CI (the test does not apply to this machine,
e.g. a GPU-only guard). Every other skip is something missing, and under CI=true it fails."""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Under ``CI`` a skipped test fails: CI must run everything (real data, vLLM, Ray, MiniLM...),
    never pass by skipping it silently."""
    outcome = yield
    report = outcome.get_result()
    if not os.environ.get("CI") or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if reason.removeprefix("Skipped: ").startswith(NOT_APPLICABLE):
        return
    report.outcome = "failed"
    report.longrepr = f"skipped under CI=true (CI must run it): {reason}"
