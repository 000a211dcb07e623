"""Frame sampling: index choice (pure) and decoding at those indices (real video)."""

from __future__ import annotations

import numpy as np
import pytest

from vidagent.core.errors import ConfigError
from vidagent.core.records import Segment
from vidagent.testing.synth import SyntheticVideo, read_frame_index
from vidagent.tools.sampling import (
    fps_indices,
    sample_fps,
    sample_segments,
    sample_uniform,
    segment_indices,
    uniform_indices,
)
from vidagent.tools.video import open_video


def test_uniform_indices_are_bin_centres() -> None:
    assert uniform_indices(100, 4).tolist() == [12, 37, 62, 87]
    assert uniform_indices(10, 1).tolist() == [5]
    assert uniform_indices(3, 8).tolist() == [0, 1, 2]  # fewer frames than asked: each once
    assert uniform_indices(100, 2, start=40, end=60).tolist() == [45, 55]


@pytest.mark.parametrize("bad", [(10, 0), (0, 3)])
def test_uniform_indices_reject_bad_input(bad: tuple[int, int]) -> None:
    with pytest.raises(ConfigError):
        uniform_indices(*bad)


def test_fps_indices(h264_video: SyntheticVideo) -> None:
    with open_video(h264_video.path) as src:
        info = src.info
    assert fps_indices(info, 1.0).tolist() == [0, 10, 20, 30, 40, 50, 60, 70]
    assert fps_indices(info, 2.0, start_s=1.0, end_s=3.0).tolist() == [10, 15, 20, 25]
    assert len(fps_indices(info, 100.0)) == h264_video.num_frames  # capped at the native rate
    with pytest.raises(ConfigError):
        fps_indices(info, 0)


def test_sample_uniform_and_fps_decode_the_right_frames(h264_video: SyntheticVideo) -> None:
    with open_video(h264_video.path) as src:
        uni = sample_uniform(src, 8)
        fps = sample_fps(src, 0.5)
    assert [read_frame_index(f) for f in uni.frames] == uni.indices.tolist()
    assert uni.indices.tolist() == uniform_indices(h264_video.num_frames, 8).tolist()
    assert fps.indices.tolist() == [0, 20, 40, 60]
    np.testing.assert_allclose(fps.timestamps, [0.0, 2.0, 4.0, 6.0], atol=1e-3)


def test_per_segment_sampling(h264_video: SyntheticVideo) -> None:
    segs = [
        Segment(index=0, start=0.0, end=2.0, start_frame=0, end_frame=20),
        Segment(index=1, start=2.0, end=3.0, start_frame=20, end_frame=30),
    ]
    assert [i.tolist() for i in segment_indices(segs, 1)] == [[10], [25]]
    with open_video(h264_video.path) as src:
        batches = sample_segments(src, segs, 4)
    assert [b.indices.tolist() for b in batches] == [[2, 7, 12, 17], [21, 23, 26, 28]]
    for b, seg in zip(batches, segs, strict=True):
        assert all(seg.start <= t < seg.end for t in b.timestamps)
        assert [read_frame_index(f) for f in b.frames] == b.indices.tolist()
