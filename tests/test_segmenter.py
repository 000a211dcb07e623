"""Segmentation on real decoded H.264 / VP9 videos with known cuts: fixed windows, shot detection
(both methods, coarse stride with exact refinement), shot splitting and timelines."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from vidagent.core.errors import ConfigError
from vidagent.core.records import Segment, Timeline, VideoInfo
from vidagent.testing.synth import SyntheticVideo, write_video
from vidagent.tools.segmenter import (
    DEFAULT_THRESHOLDS,
    TAIL_MERGE_FRACTION,
    build_timeline,
    detect_shots,
    fixed_segments,
    segments_from_cuts,
    shot_segments,
)
from vidagent.tools.video import FrameBatch, VideoSource, open_video


def _info(num_frames: int, fps: float) -> VideoInfo:
    return VideoInfo(
        path="x.mp4",
        fps=fps,
        num_frames=num_frames,
        duration=num_frames / fps,
        width=160,
        height=120,
        codec="h264",
        backend="decord",
    )


def _check_tiling(segments: Sequence[Segment], info: VideoInfo) -> None:
    """Consecutive, gap-free, frame-aligned segments covering the whole video, tokens in order."""
    assert segments
    assert [s.token for s in segments] == [f"<seg_{i}>" for i in range(len(segments))]
    assert segments[0].start_frame == 0 and segments[0].start == 0.0
    assert segments[-1].end_frame == info.num_frames
    assert segments[-1].end == pytest.approx(info.duration)
    for prev, nxt in itertools.pairwise(segments):
        assert nxt.start_frame == prev.end_frame
        assert nxt.start == prev.end
    for s in segments:
        assert s.start == pytest.approx(s.start_frame / info.fps)
        assert s.end == pytest.approx(s.end_frame / info.fps)


class RecordingSource:
    """A real decoding source that remembers which indices each ``get_frames`` call asked for."""

    def __init__(self, source: VideoSource) -> None:
        self._source = source
        self.info = source.info
        self.calls: list[np.ndarray] = []

    def get_frames(self, indices: Sequence[int] | np.ndarray) -> FrameBatch:
        self.calls.append(np.asarray(indices).copy())
        return self._source.get_frames(indices)

    def frame_times(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        return self._source.frame_times(indices)

    def close(self) -> None:
        self._source.close()

    def __enter__(self) -> RecordingSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture(scope="module")
def no_cut_video(tmp_path_factory: pytest.TempPathFactory) -> SyntheticVideo:
    """6 s at 25 fps, one shot: only the moving square and the barcode change."""
    return write_video(tmp_path_factory.mktemp("nocut") / "nocut.mp4", seconds=6, fps=25)


@pytest.fixture(scope="module")
def flash_video(tmp_path_factory: pytest.TempPathFactory) -> SyntheticVideo:
    """5 s at 10 fps with a 2-frame shot (cuts at 30 and 32): a flash."""
    path = tmp_path_factory.mktemp("flash") / "flash.webm"
    return write_video(path, seconds=5, fps=10, codec="vp9", cuts=[30, 32])


# --- fixed windows ------------------------------------------------------------------------------


def test_fixed_windows_on_real_video(h264_video: SyntheticVideo) -> None:
    with open_video(h264_video.path) as source:
        info = source.info
    segments = fixed_segments(info, 2.0)
    _check_tiling(segments, info)
    assert [(s.start_frame, s.end_frame) for s in segments] == [
        (0, 20),
        (20, 40),
        (40, 60),
        (60, 80),
    ]
    assert [(s.start, s.end) for s in segments] == [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0), (6.0, 8.0)]


@pytest.mark.parametrize(
    ("num_frames", "fps", "seconds"),
    [(1000, 29.97, 2.0), (301, 25.0, 2.0), (7200, 30.0, 4.0), (123, 23.976, 1.5), (5, 10.0, 2.0)],
)
def test_fixed_windows_tile_any_video(num_frames: int, fps: float, seconds: float) -> None:
    info = _info(num_frames, fps)
    segments = fixed_segments(info, seconds)
    _check_tiling(segments, info)
    window = seconds * fps
    for s in segments[:-1]:  # no drift: every full window is within one frame of its nominal size
        assert abs(s.num_frames - window) <= 1
    last = segments[-1].num_frames
    if len(segments) > 1:
        assert TAIL_MERGE_FRACTION * window <= last < (1 + TAIL_MERGE_FRACTION) * window + 1


def test_tail_of_a_quarter_window_is_kept_shorter_one_merged() -> None:
    kept = fixed_segments(_info(85, 10.0), 2.0)  # tail 5 frames = 25 % of a 20-frame window
    assert [(s.start_frame, s.end_frame) for s in kept][-2:] == [(60, 80), (80, 85)]
    merged = fixed_segments(_info(84, 10.0), 2.0)  # tail 4 frames < 25 %: merged
    assert [(s.start_frame, s.end_frame) for s in merged][-2:] == [(40, 60), (60, 84)]
    assert merged[-1].end == pytest.approx(8.4)
    short = fixed_segments(_info(5, 10.0), 2.0)  # shorter than one window: one segment
    assert [(s.start_frame, s.end_frame) for s in short] == [(0, 5)]


def test_last_segment_ends_at_the_recorded_duration() -> None:
    info = _info(80, 10.0).model_copy(update={"duration": 8.05})  # container says a bit longer
    segments = fixed_segments(info, 2.0)
    assert segments[-1].end == 8.05 and segments[-2].end == 6.0


@pytest.mark.parametrize("seconds", [0.0, -2.0, math.nan, math.inf, 0.05])
def test_bad_window_length_is_a_config_error(seconds: float) -> None:
    with pytest.raises(ConfigError, match="segment length"):
        fixed_segments(_info(100, 10.0), seconds)


# --- shot detection -----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["histogram", "diff"])
@pytest.mark.parametrize("stride", [1, 4, 7, 10])
@pytest.mark.parametrize("fixture", ["h264_video", "vp9_video", "multi_cut_video"])
def test_detect_shots_finds_exact_cuts(
    fixture: str, method: str, stride: int, request: pytest.FixtureRequest
) -> None:
    video: SyntheticVideo = request.getfixturevalue(fixture)
    assert detect_shots(video.path, method=method, stride=stride) == list(video.cuts)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["histogram", "diff"])
@pytest.mark.parametrize("stride", [1, 6])
def test_no_false_cuts_from_motion(no_cut_video: SyntheticVideo, method: str, stride: int) -> None:
    assert detect_shots(no_cut_video.path, method=method, stride=stride) == []  # type: ignore[arg-type]


def test_threshold_is_applied(multi_cut_video: SyntheticVideo) -> None:
    assert detect_shots(multi_cut_video.path, threshold=0.95) == []
    # The weakest diff cut (orange -> green, frame 130) scores ~0.31: between it and the others.
    assert detect_shots(multi_cut_video.path, method="diff", threshold=0.4) == [50, 210]


def test_min_shot_suppresses_flashes(flash_video: SyntheticVideo) -> None:
    assert detect_shots(flash_video.path, min_shot_seconds=0.0) == [30, 32]
    assert detect_shots(flash_video.path, min_shot_seconds=0.5) == [30]
    assert detect_shots(flash_video.path, min_shot_seconds=2.5) == []  # the last shot is 1.8 s


def test_caller_opened_sources_both_backends(h264_video: SyntheticVideo) -> None:
    for backend in ("decord", "pyav"):
        with open_video(h264_video.path, backend=backend, width=64) as source:
            assert detect_shots(source, stride=3) == [37]
    with open_video(h264_video.path) as full_size:  # full-size frames are subsampled, same result
        assert detect_shots(full_size, method="diff") == [37]


def test_coarse_pass_then_exact_refinement(multi_cut_video: SyntheticVideo) -> None:
    n = multi_cut_video.num_frames
    with open_video(multi_cut_video.path, width=64) as real:
        source = RecordingSource(real)
        done: list[tuple[int, int]] = []
        cuts = detect_shots(
            source, stride=8, batch_size=10, progress=lambda d, t: done.append((d, t))
        )
    assert cuts == [50, 130, 210]
    assert all(len(call) <= 10 for call in source.calls)  # bounded batches
    refined = [c for c in source.calls if np.all(np.diff(c) == 1)]
    coarse = np.concatenate([c for c in source.calls if not np.all(np.diff(c) == 1)])
    assert coarse.tolist() == [*range(0, n, 8), n - 1]  # every 8th frame, plus the last
    assert [(int(c[0]), int(c[-1])) for c in refined] == [(48, 56), (128, 136), (208, 216)]
    assert sum(len(c) for c in source.calls) < n  # cheaper than comparing every frame
    assert done[-1] == (n, n)
    assert [d for d, _ in done] == sorted(d for d, _ in done)


def test_stride_one_batches_cover_every_frame(vp9_video: SyntheticVideo) -> None:
    with open_video(vp9_video.path, width=64) as real:
        source = RecordingSource(real)
        assert detect_shots(source, batch_size=8) == [12]
    assert [len(c) for c in source.calls] == [8, 8, 8, 6]
    assert np.concatenate(source.calls).tolist() == list(range(vp9_video.num_frames))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "edges"}, "method"),
        ({"stride": 0}, "stride"),
        ({"threshold": 1.5}, "threshold"),
        ({"min_shot_seconds": -1.0}, "min_shot_seconds"),
        ({"batch_size": 1}, "batch_size"),
    ],
)
def test_bad_shot_parameters(h264_video: SyntheticVideo, kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        detect_shots(h264_video.path, **kwargs)


def test_default_thresholds_cover_both_methods() -> None:
    assert set(DEFAULT_THRESHOLDS) == {"histogram", "diff"}


# --- shots as segments --------------------------------------------------------------------------


def test_shot_segments_split_long_shots(multi_cut_video: SyntheticVideo) -> None:
    with open_video(multi_cut_video.path, width=64) as source:
        info = source.info
        whole = shot_segments(source, max_seconds=None)
        split = shot_segments(source, max_seconds=1.5, stride=5)
    assert [(s.start_frame, s.end_frame) for s in whole] == [
        (0, 50),
        (50, 130),
        (130, 210),
        (210, 300),
    ]
    _check_tiling(split, info)
    assert all(s.duration <= 1.5 + 1e-9 for s in split)
    starts = {s.start_frame for s in split}
    assert {50, 130, 210} <= starts  # no segment straddles a cut
    # Each shot is split into the fewest equal parts: 2 s -> 2, 3.2 s -> 3, 3.2 s -> 3, 3.6 s -> 3.
    assert len(split) == 11
    assert [(s.start_frame, s.end_frame) for s in split[:3]] == [(0, 25), (25, 50), (50, 77)]


def test_five_minute_shot_becomes_ten_second_parts() -> None:
    info = _info(5 * 60 * 30, 30.0)
    segments = segments_from_cuts(info, [], max_seconds=10.0)
    _check_tiling(segments, info)
    assert len(segments) == 30 and {s.num_frames for s in segments} == {300}
    assert len(segments_from_cuts(info, [], max_seconds=None)) == 1


def test_cuts_outside_the_video_are_rejected() -> None:
    with pytest.raises(ConfigError, match="frame 100"):
        segments_from_cuts(_info(100, 10.0), [50, 100])


# --- timelines ----------------------------------------------------------------------------------


def _roundtrip(timeline: Timeline) -> None:
    assert Timeline.model_validate_json(timeline.model_dump_json()) == timeline


def test_build_timeline_fixed(vp9_video: SyntheticVideo) -> None:
    timeline = build_timeline(vp9_video.path)
    assert timeline.segmentation.method == "fixed"
    assert timeline.segmentation.params["seconds"] == 2.0
    assert (timeline.video.width, timeline.video.height) == (160, 120)
    assert timeline.video.codec == "vp9"
    assert [(s.start_frame, s.end_frame) for s in timeline.segments] == [(0, 20), (20, 30)]
    _check_tiling(timeline.segments, timeline.video)
    _roundtrip(timeline)


def test_build_timeline_shots(multi_cut_video: SyntheticVideo, tmp_path: Path) -> None:
    seen: list[int] = []
    timeline = build_timeline(
        multi_cut_video.path,
        shots=True,
        method="diff",
        stride=4,
        max_seconds=3.0,
        progress=lambda done, total: seen.append(done),
    )
    assert timeline.segmentation.method == "shots"
    params = timeline.segmentation.params
    assert params["method"] == "diff" and params["stride"] == 4 and params["max_seconds"] == 3.0
    assert params["threshold"] == DEFAULT_THRESHOLDS["diff"]
    assert (timeline.video.width, timeline.video.height) == (160, 120)  # native, not analysis size
    _check_tiling(timeline.segments, timeline.video)
    assert {50, 130, 210} <= {s.start_frame for s in timeline.segments}
    assert all(s.duration <= 3.0 + 1e-9 for s in timeline.segments)
    assert seen and seen[-1] == multi_cut_video.num_frames
    _roundtrip(timeline)
    path = tmp_path / "timeline.json"
    path.write_text(timeline.model_dump_json())
    assert Timeline.model_validate_json(path.read_text()).by_token("<seg_1>").start_frame == 50


def test_build_timeline_from_a_source(h264_video: SyntheticVideo) -> None:
    with open_video(h264_video.path, backend="pyav") as source:
        timeline = build_timeline(source, shots=True, max_seconds=None)
    assert [s.start_frame for s in timeline.segments] == [0, 37]
    assert timeline.video.backend == "pyav"
    _roundtrip(timeline)


def test_build_timeline_rejects_mistakes(h264_video: SyntheticVideo) -> None:
    with pytest.raises(ConfigError, match="treshold"):
        build_timeline(h264_video.path, shots=True, treshold=0.3)
    with pytest.raises(ConfigError, match="shots=True"):
        build_timeline(h264_video.path, stride=4)
    with pytest.raises(ConfigError, match="seconds"):
        build_timeline(h264_video.path, seconds=None)
