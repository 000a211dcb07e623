"""The perception pipeline: videos in, timelines with captions, action labels and embeddings out.

For each video: hash its bytes, cut it into segments
(:func:`vidagent.tools.segmenter.build_timeline`; shots come from
:func:`vidagent.tools.shot_cache.cached_shot_timeline`, the store entry that
``vidagent segments --shots`` uses too), then for each tool look up the store under
``make_key(video hash, tool name, tool version, tool params + segment bounds + frame size)``. Only
tools that miss decode frames and run a model, so a second run over the same videos does no model
work. Results are stored per (video, tool) and applied to the segments, and one timeline JSON per
video is written.

Batching spans videos: decoded segments wait in one queue per tool and a tool runs when its queue
holds ``chunk_segments`` segments (or at the end), so short videos still fill GPU batches; frames
are decoded at most ``frame_size`` pixels on the short side, ``chunk_segments`` at a time, so memory
stays bounded for long videos. When the action recognizer and the embedder use the same encoder and
frames, the actions are computed from the embedder's vectors (one image pass for both).

Several runs at once, and runs that were killed (:mod:`vidagent.tools.perceive_store`): a run
claims each (video, tool) result it computes, so a second run over the same videos waits for
those results instead of computing them again, and takes over the claims of a run that died.
Each finished chunk of ``chunk_segments`` segments of a long video is stored at once, so a re-run
after a kill resumes inside the video.

A video that cannot be read, or on which a model fails, is recorded as failed in the summary and
the others go on; a batch that fails is retried video by video to find the culprit. Errors that
would fail every video (a model that cannot be loaded, a bad option) stop the run.
The engine is :mod:`vidagent.tools.perceive_engine`; its records
(:mod:`vidagent.tools.perceive_records`) are re-exported here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vidagent.core.records import Timeline
from vidagent.tools.models import PerceptionTool
from vidagent.tools.perceive_engine import FATAL, Engine
from vidagent.tools.perceive_records import (
    PerceiveSummary,
    Progress,
    ProgressEvent,
    VideoJob,
    VideoResult,
    VideoStatus,
    output_names,
)
from vidagent.tools.shot_cache import SHOTS_TOOL, SHOTS_VERSION

__all__ = [
    "FATAL",
    "SHOTS_TOOL",
    "SHOTS_VERSION",
    "Engine",
    "PerceiveSummary",
    "Progress",
    "ProgressEvent",
    "VideoResult",
    "VideoStatus",
    "make_jobs",
    "output_names",
    "perceive",
    "perceive_many",
]


def make_jobs(
    paths: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str] | None
) -> list[VideoJob]:
    """One job per video, writing ``out_dir/<name>.json`` (names unique among the videos)."""
    files = [Path(p) for p in paths]
    out = Path(out_dir) if out_dir is not None else None
    return [
        VideoJob(p, out / name if out is not None else None)
        for p, name in zip(files, output_names(files), strict=True)
    ]


def perceive_many(
    paths: Sequence[str | os.PathLike[str]],
    *,
    tools: Sequence[PerceptionTool],
    store: Any,
    out_dir: str | os.PathLike[str] | None,
    seconds: float | None = 2.0,
    shots: bool = False,
    shot_params: Mapping[str, Any] | None = None,
    frame_size: int | None = 448,
    chunk_segments: int = 64,
    progress: Progress | None = None,
) -> PerceiveSummary:
    """Run ``tools`` over ``paths``; write ``out_dir/<stem>.json`` timelines; never stop on one
    bad video. Segmentation: fixed ``seconds`` windows, or ``shots=True`` with ``shot_params``
    (:class:`vidagent.tools.segmenter.ShotParams` names). ``frame_size``: short side of decoded
    frames (None: native)."""
    started = time.perf_counter()
    jobs = make_jobs(paths, out_dir)
    engine = Engine(
        tools,
        store,
        seconds=seconds,
        shots=shots,
        shot_params=shot_params,
        frame_size=frame_size,
        chunk_segments=chunk_segments,
        progress=progress,
    )
    engine.run(jobs)
    results = [job.result for job in jobs if job.result is not None]
    return PerceiveSummary(results=results, seconds=time.perf_counter() - started)


def perceive(
    path: str | os.PathLike[str],
    *,
    tools: Sequence[PerceptionTool],
    store: Any,
    seconds: float | None = 2.0,
    shots: bool = False,
    shot_params: Mapping[str, Any] | None = None,
    frame_size: int | None = 448,
    chunk_segments: int = 64,
    progress: Progress | None = None,
) -> Timeline:
    """One video's timeline with every tool's results; raises the video's error if it fails."""
    job = VideoJob(Path(path), None, keep=True)
    engine = Engine(
        tools,
        store,
        seconds=seconds,
        shots=shots,
        shot_params=shot_params,
        frame_size=frame_size,
        chunk_segments=chunk_segments,
        progress=progress,
    )
    engine.run([job])
    if job.error is not None:
        raise job.error
    assert job.final is not None
    return job.final
