"""Where a benchmark run gets each video's :class:`~vidagent.core.records.Timeline` from.

- :class:`TimelineDir`: ``<video_id>.json`` Timeline files written by ``vidagent perceive``.
- :class:`CaptionsFile`: precomputed captions ``{video_id: [{"start", "end", "caption"}]}`` (as the
  LLoVi / VideoAgent releases give), turned into a caption-only timeline, so the LLM stage can run
  without any perception model.
- A callable ``video_id -> Timeline`` (the CLI's on-the-fly perception of ``--videos DIR``).

A missing or broken entry raises :class:`~vidagent.evals.common.EvalError` naming the video; the
runner records it as that sample's failure.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from vidagent.core.records import Caption, Segment, Segmentation, Timeline, VideoInfo
from vidagent.evals.common import EvalError, load_json

TimelineSource = Callable[[str], Timeline]
CAPTION_FPS = 30.0


class TimelineDir:
    """Timelines saved as ``<dir>/<video_id>.json``."""

    def __init__(self, directory: Path) -> None:
        if not directory.is_dir():
            raise EvalError(directory, "not a directory of timeline files")
        self.directory = directory

    def __call__(self, video_id: str) -> Timeline:
        path = self.directory / f"{video_id}.json"
        if not path.is_file():
            raise EvalError(path, f"no timeline for video {video_id!r}")
        try:
            return Timeline.model_validate_json(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise EvalError(path, f"not a valid timeline ({str(exc).splitlines()[0]})") from exc


class CaptionsFile:
    """Caption-only timelines from one ``{video_id: [{"start", "end", "caption"}]}`` JSON file."""

    def __init__(self, path: Path) -> None:
        data = load_json(path)
        if not isinstance(data, dict):
            raise EvalError(path, 'expected {video_id: [{"start", "end", "caption"}, ...]}')
        self.path = path
        self.data: dict[str, Any] = data

    def __call__(self, video_id: str) -> Timeline:
        items = self.data.get(video_id)
        if not isinstance(items, list) or not items:
            raise EvalError(self.path, f"no captions for video {video_id!r}")
        try:
            return captions_timeline(video_id, items)
        except (KeyError, TypeError, ValueError) as exc:
            raise EvalError(self.path, f"bad captions for {video_id!r} ({exc})") from exc


def captions_timeline(video_id: str, items: list[dict[str, Any]]) -> Timeline:
    """A timeline with one segment per caption (sorted by start; overlaps clipped)."""
    spans = sorted((float(i["start"]), float(i["end"]), str(i["caption"])) for i in items)
    segments: list[Segment] = []
    last_frame = 0
    for start, end, text in spans:
        first = max(last_frame, round(start * CAPTION_FPS))
        stop = round(end * CAPTION_FPS)
        if stop <= first:
            continue
        segments.append(
            Segment(
                index=len(segments),
                start=first / CAPTION_FPS,
                end=stop / CAPTION_FPS,
                start_frame=first,
                end_frame=stop,
                captions=[Caption(text=text, model="captions-file")],
            )
        )
        last_frame = stop
    if not segments:
        raise ValueError("no caption has a positive duration")
    info = VideoInfo(
        path=video_id,
        fps=CAPTION_FPS,
        num_frames=last_frame,
        duration=last_frame / CAPTION_FPS,
        width=1,
        height=1,
        codec="none",
        backend="pyav",
    )
    return Timeline(
        video=info, segmentation=Segmentation(method="fixed", params={}), segments=segments
    )


def observed_part(timeline: Timeline, observed_end: float) -> int:
    """How many leading segments end by ``observed_end`` (at least one)."""
    count = sum(1 for s in timeline.segments if s.end <= observed_end + 1e-6)
    return max(1, count)
