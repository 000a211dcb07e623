"""Records of the perception pipeline (:mod:`vidagent.tools.perceive`) that its callers see:
per-video
results, the run summary, progress events, decode sizes, timeline files, one video's job state."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from vidagent.core.records import Record, Timeline

VideoStatus = Literal["ok", "cached", "failed"]


class VideoResult(Record):
    """What happened to one video."""

    path: str
    status: VideoStatus
    timeline: str | None = Field(default=None, description="Timeline JSON written, if any")
    segments: int = 0
    computed: list[str] = Field(default_factory=list, description="Tools that ran a model")
    cached: list[str] = Field(default_factory=list, description="Tools found in the store")
    error: str | None = None
    seconds: float = 0.0


class PerceiveSummary(Record):
    """Per-video results of :func:`perceive_many`, in input order."""

    results: list[VideoResult]
    seconds: float = 0.0

    def count(self, status: VideoStatus) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def failed(self) -> list[VideoResult]:
        return [r for r in self.results if r.status == "failed"]


@dataclass(frozen=True)
class ProgressEvent:
    """``planned``: ``count`` segment-runs to compute for ``path``; ``segments``: ``count`` done;
    ``video``: ``path`` finished (``result`` says how)."""

    kind: Literal["planned", "segments", "video"]
    path: str
    count: int = 0
    result: VideoResult | None = None


Progress = Callable[[ProgressEvent], None]


def decode_size(width: int, height: int, frame_size: int | None) -> tuple[int | None, int | None]:
    """Decode-time ``(width, height)`` so the short side is at most ``frame_size`` (one side
    given: the aspect ratio is kept); ``(None, None)`` decodes at the native size."""
    if not frame_size or min(width, height) <= frame_size:
        return None, None
    return (frame_size, None) if width <= height else (None, frame_size)


def output_names(paths: Sequence[Path]) -> list[str]:
    """``<stem>.json`` per video; stems that repeat get ``-<8 hex of the path>`` to stay apart."""
    stems = [p.stem for p in paths]
    return [
        f"{s}-{hashlib.sha256(str(p.resolve()).encode()).hexdigest()[:8]}.json"
        if stems.count(s) > 1
        else f"{s}.json"
        for s, p in zip(stems, paths, strict=True)
    ]


def write_json(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a temp file beside it, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


@dataclass(eq=False)
class VideoJob:
    """One video's state in the pipeline: its segments, store keys, results row by row."""

    path: Path
    out: Path | None
    keep: bool = False  # keep the final timeline in memory (single-video perceive)
    started: float = field(default_factory=time.perf_counter)
    video_hash: str = ""
    timeline: Timeline | None = None
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    todo: list[str] = field(default_factory=list)
    """Tools this run computes for the video (their keys are claimed)."""
    waiting: list[str] = field(default_factory=list)
    """Tools another run is computing for the video (it holds their claims)."""
    rows: dict[str, dict[int, tuple[Any, dict[str, np.ndarray]]]] = field(default_factory=dict)
    """Per tool of ``todo``, the rows computed or resumed so far, by segment position."""
    saved: dict[str, set[int]] = field(default_factory=dict)
    """Per tool, the chunks (indices) stored as partial records or loaded from them."""
    error: BaseException | None = None
    result: VideoResult | None = None
    final: Timeline | None = None

    @property
    def n(self) -> int:
        return len(self.timeline.segments) if self.timeline else 0

    def complete(self) -> bool:
        """Every tool's result is at hand (computed and stored, or found in the store)."""
        return not self.waiting and all(name in self.values for name in self.todo)
