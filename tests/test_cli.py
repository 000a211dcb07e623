"""The CLI as a user runs it: real subprocesses for exit codes and one-line errors, plus main()."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vidagent.cli.main import main
from vidagent.core.records import Timeline
from vidagent.testing.synth import SyntheticVideo, read_frame_index


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vidagent.cli.main", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_help_lists_the_commands() -> None:
    res = run_cli("--help")
    assert res.returncode == 0
    for cmd in ("info", "segments", "frames", "demo", "perceive", "ask", "anticipate", "localize"):
        assert cmd in res.stdout


def test_info_json(h264_video: SyntheticVideo, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["info", str(h264_video.path), "--json"])
    assert exit_.value.code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["num_frames"] == 80 and data["fps"] == 10 and data["codec"] == "h264"
    assert len(data["content_hash"]) == 32


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file"),
        (b"", "file is empty"),
        (b"hello, I am a text file\n" * 10, "not a video"),
    ],
)
def test_bad_video_is_one_line_and_exit_2(
    tmp_path: Path, content: bytes | None, expected: str
) -> None:
    path = tmp_path / "clip.mp4"
    if content is not None:
        path.write_bytes(content)
    res = run_cli("info", str(path))
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error:") and str(path) in lines[0] and expected in lines[0]
    assert "Traceback" not in res.stderr


def test_truncated_video_is_reported_as_corrupt(tmp_path: Path, h264_video: SyntheticVideo) -> None:
    data = h264_video.path.read_bytes()
    bad = tmp_path / "half.mp4"
    bad.write_bytes(data[: len(data) // 2])
    res = run_cli("segments", str(bad))
    assert res.returncode == 2
    assert "truncated" in res.stderr and "Traceback" not in res.stderr


def test_segments_fixed_windows_json(h264_video: SyntheticVideo, tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    res = run_cli("segments", str(h264_video.path), "--seconds", "3", "--json", "-o", str(out))
    assert res.returncode == 0, res.stderr
    timeline = Timeline.model_validate_json(res.stdout)
    assert Timeline.model_validate_json(out.read_text()) == timeline
    assert [(s.start, s.end) for s in timeline.segments] == [(0.0, 3.0), (3.0, 6.0), (6.0, 8.0)]
    assert timeline.segmentation.method == "fixed"


def test_segments_shots_finds_the_cut_and_is_cached(
    multi_cut_video: SyntheticVideo, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["segments", str(multi_cut_video.path), "--shots", "--max-shot-seconds", "0", "--json"]
    with pytest.raises(SystemExit):
        main(args)
    first = Timeline.model_validate_json(capsys.readouterr().out)
    assert [s.start_frame for s in first.segments] == [0, *multi_cut_video.cuts]

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("shot detection ran again although the result is cached")

    mp = pytest.MonkeyPatch()
    mp.setattr("vidagent.tools.segmenter.detect_shots", boom)
    try:
        with pytest.raises(SystemExit) as exit_:
            main(args)
    finally:
        mp.undo()
    assert exit_.value.code == 0
    assert Timeline.model_validate_json(capsys.readouterr().out) == first


def test_segments_options_are_exclusive(h264_video: SyntheticVideo) -> None:
    res = run_cli("segments", str(h264_video.path), "--shots", "--seconds", "2")
    assert res.returncode == 2 and "exclusive" in res.stderr


def test_frames_contact_sheet(h264_video: SyntheticVideo, tmp_path: Path) -> None:
    out = tmp_path / "sheet.png"
    res = run_cli("frames", str(h264_video.path), "--num", "6", "--out", str(out))
    assert res.returncode == 0, res.stderr
    image = np.asarray(Image.open(out).convert("RGB"))
    assert image.shape[0] > 100 and image.shape[1] > 300
    assert image.std() > 10  # not a blank canvas


def test_video_demo_runs_offline(tmp_path: Path) -> None:
    res = run_cli("demo-video", "--out", str(tmp_path / "demo"))
    assert res.returncode == 0, res.stderr
    timeline = Timeline.model_validate_json((tmp_path / "demo" / "timeline.json").read_text())
    starts = [s.start_frame for s in timeline.segments]
    assert {0, 75, 190} <= set(starts)
    assert all(s.duration <= 4.0 + 1e-6 for s in timeline.segments)
    assert (tmp_path / "demo" / "frames.png").stat().st_size > 1000


def test_video_demo_writes_under_the_vidagent_home_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.chdir(tmp_path)
    res = run_cli("demo-video", env={"VIDAGENT_HOME": str(home)})
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]  # nothing in the current folder
    assert {"demo.mp4", "timeline.json", "frames.png"} <= {
        p.name for p in (home / "demo-video").iterdir()
    }


def test_barcode_sanity(h264_video: SyntheticVideo) -> None:
    """The fixtures themselves: frame 0's barcode reads 0 (guards every frame-exactness test)."""
    from vidagent.tools.video import open_video

    with open_video(h264_video.path) as src:
        assert read_frame_index(src.get_frames([0]).frames[0]) == 0


@pytest.mark.parametrize("command", ["ask", "localize"])
def test_task_commands_report_a_bad_video_before_loading_models(
    tmp_path: Path, command: str
) -> None:
    res = run_cli(command, str(tmp_path / "missing.mp4"), "what happens?")
    assert res.returncode == 2
    assert "missing.mp4: no such file" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["nosuch"], "No such command 'nosuch'"),
        (["segments"], "Missing argument 'VIDEO'"),
        (["ask", "v.mp4", "q", "--samples", "0"], "'--samples'"),
        (["eval", "run", "nextqa", "--z", "abc"], "'--z'"),
    ],
)
def test_usage_errors_are_one_line_naming_the_flag(args: list[str], says: str) -> None:
    res = run_cli(*args)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("error: "), res.stderr
    assert says in res.stderr and "--help" in res.stderr
