"""Video ingestion on real H.264 / VP9 files: metadata, frame-exact access, resize, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vidagent.core.errors import (
    ConfigError,
    CorruptVideoError,
    EmptyVideoError,
    NotAVideoError,
    NoVideoStreamError,
    VideoError,
    VideoNotFoundError,
)
from vidagent.testing.synth import (
    SyntheticVideo,
    read_frame_index,
    write_audio_only,
    write_empty_video,
    write_video,
)
from vidagent.tools.video import open_video, probe_video

BACKENDS = ["decord", "pyav"]


def _indices_read(frames: np.ndarray) -> list[int]:
    return [read_frame_index(f) for f in frames]


@pytest.mark.parametrize("backend", BACKENDS)
def test_metadata_matches_what_was_written(h264_video: SyntheticVideo, backend: str) -> None:
    with open_video(h264_video.path, backend=backend) as src:  # type: ignore[arg-type]
        info = src.info
    assert info.backend == backend
    assert info.fps == pytest.approx(h264_video.fps)
    assert info.num_frames == h264_video.num_frames
    assert info.duration == pytest.approx(h264_video.duration)
    assert (info.width, info.height) == (h264_video.width, h264_video.height)
    assert info.codec == "h264"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fixture", ["h264_video", "vp9_video"])
def test_frame_exact_access_in_any_order(
    request: pytest.FixtureRequest, fixture: str, backend: str
) -> None:
    video: SyntheticVideo = request.getfixturevalue(fixture)
    last = video.num_frames - 1
    wanted = [last, 0, 17, 3, 3, 11, last - 1, 1]
    with open_video(video.path, backend=backend) as src:  # type: ignore[arg-type]
        batch = src.get_frames(wanted)
    assert batch.frames.shape == (len(wanted), video.height, video.width, 3)
    assert batch.frames.dtype == np.uint8
    assert _indices_read(batch.frames) == wanted
    assert batch.indices.tolist() == wanted
    np.testing.assert_allclose(batch.timestamps, np.array(wanted) / video.fps, atol=1e-3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_frame_in_sequence(h264_video: SyntheticVideo, backend: str) -> None:
    with open_video(h264_video.path, backend=backend) as src:  # type: ignore[arg-type]
        batch = src.get_frames(range(h264_video.num_frames))
    assert _indices_read(batch.frames) == list(range(h264_video.num_frames))


def test_backends_decode_identical_pixels(vp9_video: SyntheticVideo) -> None:
    idx = [0, 5, 12, 29]
    with (
        open_video(vp9_video.path, backend="decord") as a,
        open_video(vp9_video.path, backend="pyav") as b,
    ):
        np.testing.assert_array_equal(a.get_frames(idx).frames, b.get_frames(idx).frames)


@pytest.mark.parametrize("backend", BACKENDS)
def test_decode_time_resize_keeps_aspect_and_content(
    h264_video: SyntheticVideo, backend: str
) -> None:
    with open_video(h264_video.path, backend=backend, width=80) as src:  # type: ignore[arg-type]
        assert (src.info.width, src.info.height) == (80, 60)
        batch = src.get_frames([2, 30, 79])
    assert batch.frames.shape == (3, 60, 80, 3)
    assert _indices_read(batch.frames) == [2, 30, 79]
    with open_video(h264_video.path, backend=backend, width=64, height=64) as src:  # type: ignore[arg-type]
        assert src.get_frames([0]).frames.shape == (1, 64, 64, 3)


def test_out_of_range_index_is_an_error(h264_video: SyntheticVideo) -> None:
    with open_video(h264_video.path) as src, pytest.raises(IndexError, match="out of range"):
        src.get_frames([0, h264_video.num_frames])


def test_bad_resize_is_a_config_error(h264_video: SyntheticVideo) -> None:
    with pytest.raises(ConfigError):
        open_video(h264_video.path, width=-5)


def test_auto_falls_back_to_pyav_when_decord_cannot_read(
    h264_video: SyntheticVideo, monkeypatch: pytest.MonkeyPatch
) -> None:
    import decord

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated decord failure")

    monkeypatch.setattr(decord, "VideoReader", broken)
    with open_video(h264_video.path) as src:
        assert src.info.backend == "pyav"
        assert _indices_read(src.get_frames([9]).frames) == [9]


# --- bad input: each gives a specific error naming the file ------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.mp4"
    with pytest.raises(VideoNotFoundError, match=r"nope\.mp4: no such file"):
        open_video(path)


def test_directory_is_not_a_video(tmp_path: Path) -> None:
    with pytest.raises(VideoNotFoundError, match="not a regular file"):
        open_video(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "zero.mp4"
    path.write_bytes(b"")
    with pytest.raises(NotAVideoError, match="0 bytes"):
        open_video(path)


def test_text_file_is_not_a_video(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 20)
    with pytest.raises(NotAVideoError, match=r"notes\.mp4: not a video"):
        open_video(path)


def test_audio_only_file_has_no_video_stream(tmp_path: Path) -> None:
    path = write_audio_only(tmp_path / "audio.m4a")
    with pytest.raises(NoVideoStreamError, match=r"audio\.m4a: .*no video stream"):
        open_video(path)


def test_zero_frame_video(tmp_path: Path) -> None:
    path = write_empty_video(tmp_path / "empty.avi")
    with pytest.raises(EmptyVideoError, match=r"empty\.avi: .*zero frames"):
        open_video(path)


def test_truncated_mp4_without_index(tmp_path: Path) -> None:
    video = write_video(tmp_path / "full.mp4", seconds=4, fps=10)
    cut = tmp_path / "cut.mp4"
    data = video.path.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptVideoError, match=r"cut\.mp4: looks like MP4/MOV .*truncated"):
        open_video(cut)


def test_truncated_faststart_mp4(tmp_path: Path) -> None:
    video = write_video(tmp_path / "full.mp4", seconds=6, fps=10, faststart=True, gop=10)
    cut = tmp_path / "cut.mp4"
    data = video.path.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptVideoError, match=r"cut\.mp4: truncated"):
        probe_video(cut)


def test_garbage_after_valid_header_is_corrupt(tmp_path: Path) -> None:
    video = write_video(tmp_path / "full.mp4", seconds=2, fps=10)
    bad = tmp_path / "bad.mp4"
    data = bytearray(video.path.read_bytes())
    data[40:] = bytes(len(data) - 40)  # keep the ftyp box, zero the rest
    bad.write_bytes(bytes(data))
    with pytest.raises(CorruptVideoError, match=r"bad\.mp4"):
        probe_video(bad)


def test_every_video_error_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "notes.mkv"
    path.write_text("x" * 100)
    with pytest.raises(VideoError) as info:
        open_video(path)
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)


def test_probe_reports_metadata(vp9_video: SyntheticVideo) -> None:
    info = probe_video(vp9_video.path)
    assert info.codec == "vp9"
    assert info.num_frames == vp9_video.num_frames
