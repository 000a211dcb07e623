"""Frozen segment embeddings for training, from the perception store.

The labelled videos go through the perception pipeline (:class:`vidagent.tools.perceive.Engine`)
with only the segment embedder: what ``vidagent perceive`` already stored for the same model,
frames per segment, segment length and frame size is read back, the rest is computed and stored
(so a later ``perceive`` finds it too). A head trained on these vectors scores exactly the vectors
``perceive --action-head`` computes with the same settings.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vidagent.core.records import Segment
from vidagent.tools.perceive import Engine
from vidagent.tools.perceive_records import Progress, VideoJob
from vidagent.tools.video import VIDEO_SUFFIXES
from vidagent.tools.visual_embedder import SegmentEmbedder
from vidagent.train.errors import MissingVideosError, TrainError


@dataclass(frozen=True)
class VideoFeatures:
    """One video's segments and their ``(len(segments), D)`` unit embeddings."""

    path: Path
    segments: list[Segment]
    embeddings: np.ndarray


def _listing(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def find_video(video: str, videos_dir: Path) -> Path | None:
    """``video`` as an absolute path, as a path under ``videos_dir``, or as
    ``videos_dir/<video><ext>`` for a video suffix (Ego4D's ``clips/<clip_uid>.mp4``)."""
    candidate = Path(video)
    if candidate.is_absolute():
        return candidate if candidate.is_file() else None
    if (videos_dir / candidate).is_file():
        return videos_dir / candidate
    for suffix in sorted(VIDEO_SUFFIXES):
        path = videos_dir / f"{video}{suffix}"
        if path.is_file():
            return path
    return None


def resolve_videos(videos: Iterable[str], videos_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """The file of every labelled video; any missing is one :class:`MissingVideosError`."""
    folder = Path(videos_dir)
    if not folder.is_dir():
        raise MissingVideosError(f"videos folder {folder}: not a directory")
    found: dict[str, Path] = {}
    missing = []
    for video in dict.fromkeys(videos):
        path = find_video(video, folder)
        if path is None:
            missing.append(video)
        else:
            found[video] = path
    if missing:
        raise MissingVideosError(
            f"{len(missing)} labelled video(s) not found in {folder}: {_listing(missing)}"
        )
    return found


def segment_features(
    videos: Mapping[str, Path],
    embedder: SegmentEmbedder,
    store: Any,
    *,
    seconds: float = 2.0,
    frame_size: int | None = 448,
    chunk_segments: int = 64,
    cached_only: bool = False,
    progress: Progress | None = None,
) -> dict[str, VideoFeatures]:
    """Segment embeddings of ``videos`` (id -> file) from ``store``, perceiving what is missing
    (``cached_only``: nothing; a video the store lacks is a :class:`MissingVideosError`)."""
    jobs = {video: VideoJob(path, None, keep=True) for video, path in videos.items()}
    engine = Engine(
        [embedder],
        store,
        seconds=seconds,
        shots=False,
        shot_params=None,
        frame_size=frame_size,
        chunk_segments=chunk_segments,
        progress=progress,
    )
    if cached_only:
        for job in jobs.values():
            engine.plan(job)
        absent = [video for video, job in jobs.items() if job.todo]
        if absent:
            raise MissingVideosError(
                f"{len(absent)} video(s) not in the perception store for {embedder.params.model} "
                f"(frames per segment {embedder.params.frames_per_segment}, {seconds:g} s "
                f"segments): {_listing(absent)}; run vidagent perceive on them first"
            )
        for job in jobs.values():
            engine.finish(job)
    else:
        engine.run(list(jobs.values()))
    failed = [
        f"{job.path} ({job.result.error})"
        for job in jobs.values()
        if job.result is not None and job.result.status == "failed"
    ]
    if failed:
        raise TrainError(f"{len(failed)} video(s) could not be perceived: {_listing(failed)}")
    out = {}
    for video, job in jobs.items():
        assert job.final is not None
        hit = store.get(job.keys[embedder.name])
        if hit is None:
            raise TrainError(f"{job.path}: its embeddings vanished from the store")
        out[video] = VideoFeatures(job.path, list(job.final.segments), hit.array("embeddings"))
    return out
