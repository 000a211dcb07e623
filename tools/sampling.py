"""Which frames to decode: uniform N, a fixed rate, or k per segment.

The functions here only choose indices (pure, cheap, testable); :func:`sample_frames` decodes them
through a :class:`~vidagent.tools.video.VideoSource` in one batch and returns frames with exact
timestamps.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vidagent.core.errors import ConfigError
from vidagent.core.records import Segment, VideoInfo
from vidagent.tools.video import FrameBatch, VideoSource


def uniform_indices(num_frames: int, n: int, start: int = 0, end: int | None = None) -> np.ndarray:
    """``n`` indices at the centres of ``n`` equal bins of ``[start, end)`` (end exclusive).

    Centres rather than edges, so that the first and last bins are represented like the others (the
    TSN / lmms-eval convention). Fewer frames than ``n`` gives each frame once.
    """
    if n < 1:
        raise ConfigError(f"number of frames to sample must be >= 1, got {n}")
    end = num_frames if end is None else min(end, num_frames)
    if not 0 <= start < end:
        raise ConfigError(f"empty frame range [{start}, {end}) in a video of {num_frames} frames")
    length = end - start
    if n >= length:
        return np.arange(start, end, dtype=np.int64)
    centres = start + (np.arange(n, dtype=np.float64) + 0.5) * length / n
    return np.minimum(np.floor(centres).astype(np.int64), end - 1)


def fps_indices(
    info: VideoInfo, target_fps: float, start_s: float = 0.0, end_s: float | None = None
) -> np.ndarray:
    """Indices for sampling at ``target_fps`` frames per second over ``[start_s, end_s)`` seconds.

    Each sample time ``t`` maps to the frame displayed at ``t`` (``floor(t * fps)``); a target rate
    above the video's own gives each frame once.
    """
    if target_fps <= 0:
        raise ConfigError(f"sampling fps must be > 0, got {target_fps}")
    end_s = info.duration if end_s is None else min(end_s, info.duration)
    if not 0 <= start_s < end_s:
        raise ConfigError(f"empty time range [{start_s}, {end_s}) in a {info.duration:.2f}s video")
    step = 1.0 / target_fps
    times = np.arange(start_s, end_s - 1e-9, step, dtype=np.float64)
    idx = np.floor(times * info.fps + 1e-6).astype(np.int64)
    return np.unique(np.clip(idx, 0, info.num_frames - 1))


def segment_indices(segments: Sequence[Segment], k: int) -> list[np.ndarray]:
    """``k`` uniformly spread indices inside each segment (``k=1`` gives the middle frame)."""
    return [uniform_indices(s.end_frame, k, s.start_frame, s.end_frame) for s in segments]


def sample_frames(source: VideoSource, indices: Sequence[int] | np.ndarray) -> FrameBatch:
    """Decode ``indices`` in one batch, with exact presentation timestamps."""
    return source.get_frames(indices)


def sample_uniform(source: VideoSource, n: int) -> FrameBatch:
    """``n`` frames spread evenly over the whole video."""
    return source.get_frames(uniform_indices(source.info.num_frames, n))


def sample_fps(source: VideoSource, target_fps: float) -> FrameBatch:
    """Frames at a fixed rate over the whole video."""
    return source.get_frames(fps_indices(source.info, target_fps))


def sample_segments(source: VideoSource, segments: Sequence[Segment], k: int) -> list[FrameBatch]:
    """``k`` frames per segment, decoded in one batch and split back per segment."""
    per_segment = segment_indices(segments, k)
    if not per_segment:
        return []
    batch = source.get_frames(np.concatenate(per_segment))
    out: list[FrameBatch] = []
    offset = 0
    for idx in per_segment:
        n = len(idx)
        sl = slice(offset, offset + n)
        out.append(FrameBatch(batch.frames[sl], batch.indices[sl], batch.timestamps[sl]))
        offset += n
    return out
