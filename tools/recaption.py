"""Finer captions of a stretch of a video, on demand: the chat's ``describe_moment(fine=true)``.

The timeline's captions come at the segment rate (one segment = 2 s by default). When a question
needs more detail about a moment, :func:`recaption` cuts the window around it into short steps
(``step_s``, default 0.5 s), decodes each step's frames and runs the same captioner on them. The
result is cached in the perception store under the video's content hash, the captioner's cache
params and the steps' frame bounds, so asking again about the same moment does no model work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidagent.core.records import Segment, VideoInfo
from vidagent.tools.perceive_records import decode_size
from vidagent.tools.sampling import sample_segments
from vidagent.tools.video import open_video

MAX_STEPS = 64
"""Most steps one call captions (a window of 32 s at the default 0.5 s step)."""


@dataclass(frozen=True)
class FineCaption:
    """The captions of one step of the window."""

    start: float
    end: float
    texts: list[str]


def fine_segments(info: VideoInfo, start: float, end: float, step_s: float) -> list[Segment]:
    """Frame-aligned steps of about ``step_s`` covering ``[start, end)`` inside the video.

    At least one frame per step; a window longer than :data:`MAX_STEPS` steps gets longer steps.
    """
    if step_s <= 0:
        raise ValueError(f"step_s must be positive, got {step_s}")
    fps, frames = info.fps, info.num_frames
    first = max(0, min(frames - 1, math.floor(max(0.0, start) * fps)))
    last = max(first + 1, min(frames, math.ceil(min(end, info.duration) * fps)))
    per_step = max(1, round(step_s * fps), math.ceil((last - first) / MAX_STEPS))
    segments = []
    for i, lo in enumerate(range(first, last, per_step)):
        hi = min(last, lo + per_step)
        segments.append(
            Segment(index=i, start=lo / fps, end=hi / fps, start_frame=lo, end_frame=hi)
        )
    return segments


def recaption(
    path: Path,
    info: VideoInfo,
    start: float,
    end: float,
    *,
    captioner: Any,
    store: Any,
    step_s: float = 0.5,
    frame_size: int | None = 448,
) -> list[FineCaption]:
    """Captions of ``[start, end)`` of the video at ``path``, one entry per step (cached)."""
    segments = fine_segments(info, start, end, step_s)
    params = {
        **captioner.cache_params(store.video_hash),
        "steps": [[s.start_frame, s.end_frame] for s in segments],
        "frame_size": frame_size,
    }

    def compute() -> tuple[dict[str, Any], None]:
        width, height = decode_size(info.width, info.height, frame_size)
        with open_video(path, width=width, height=height) as source:
            frames = sample_segments(source, segments, captioner.params.frames_per_segment)
        return {"items": captioner.run(frames).items}, None

    video_hash = store.video_hash(path)
    tool = f"{captioner.name}.fine"
    result = store.get_or_compute(video_hash, tool, captioner.version, params, compute)
    items = result.value["items"]
    return [
        FineCaption(s.start, s.end, [str(t) for t in texts])
        for s, texts in zip(segments, items, strict=True)
    ]


__all__ = ["MAX_STEPS", "FineCaption", "fine_segments", "recaption"]
