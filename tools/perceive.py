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

A video that cannot be read, or on which a model fails, is recorded as failed in the summary and
the others go on; a batch that fails is retried video by video to find the culprit. Errors that
would fail every video (a model that cannot be loaded, a bad option) stop the run.
Its records (:mod:`vidagent.tools.perceive_records`) are re-exported here.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vidagent.core.errors import ConfigError, MissingDependencyError
from vidagent.core.records import Segment, Timeline
from vidagent.tools.models import ModelLoadError, PerceptionTool, ToolOutput
from vidagent.tools.perceive_records import (
    PerceiveSummary,
    Progress,
    ProgressEvent,
    VideoJob,
    VideoResult,
    VideoStatus,
    decode_size,
    output_names,
    write_json,
)
from vidagent.tools.sampling import sample_segments
from vidagent.tools.shot_cache import SHOTS_TOOL, SHOTS_VERSION
from vidagent.tools.video import FrameBatch, open_video

FATAL = (ModelLoadError, MissingDependencyError, ConfigError)
"""Errors of a tool's set-up or run that would repeat on every video: they stop the run."""

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


class _StopRun(Exception):
    """Carries an error of a tool that would fail every video (:data:`FATAL`) out of the run."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _segments_digest(segments: Sequence[Segment]) -> str:
    bounds = [[s.start_frame, s.end_frame] for s in segments]
    return hashlib.sha256(json.dumps(bounds).encode()).hexdigest()[:32]


class Engine:
    """The pipeline over video jobs: :meth:`plan` (hash, segment, look up the store), batching
    across videos, running the tools that missed, :meth:`finish` / :meth:`fail` per video.
    :func:`perceive_many` runs it in process; :mod:`vidagent.tools.perceive_ray` plans on the
    driver with it and runs the rest on Ray actors."""

    def __init__(
        self,
        tools: Sequence[PerceptionTool],
        store: Any,
        *,
        seconds: float | None,
        shots: bool,
        shot_params: Mapping[str, Any] | None,
        frame_size: int | None,
        chunk_segments: int,
        progress: Progress | None,
    ) -> None:
        names = [t.name for t in tools]
        if len(set(names)) != len(names):
            raise ConfigError(f"tool names must be unique, got {names}")
        if chunk_segments < 1:
            raise ConfigError(f"chunk_segments must be >= 1, got {chunk_segments}")
        self.tools = {t.name: t for t in tools}
        self.store = store
        self.seconds, self.shots, self.shot_params = seconds, shots, dict(shot_params or {})
        self.frame_size = frame_size
        self.chunk = chunk_segments
        self.progress = progress
        self.queues: dict[str, list[tuple[VideoJob, int, FrameBatch]]] = {n: [] for n in names}
        self.linked = self._linked_actions()
        self._tool_fields = {
            t.name: t.cache_params(hasher=store.video_hash) for t in tools
        }  # validates files and devices before any video is touched

    def _linked_actions(self) -> str | None:
        """The action tool that can reuse the embedder's vectors, if any."""
        emb, act = self.tools.get("embedder"), self.tools.get("actions")
        sig = "encoder_signature"
        shareable = emb and act and hasattr(emb, sig) and hasattr(act, "run_embeddings")
        if act is not None and shareable and getattr(emb, sig)() == getattr(act, sig)():
            return str(act.name)
        return None

    def _emit(self, kind: Any, job: VideoJob, count: int = 0) -> None:
        if self.progress is not None:
            self.progress(ProgressEvent(kind, str(job.path), count, job.result))

    # --- planning: hash, segments, store look-ups ----------------------------------------------

    def _timeline(self, job: VideoJob) -> Timeline:
        from vidagent.tools.segmenter import build_timeline
        from vidagent.tools.shot_cache import cached_shot_timeline

        if not self.shots:
            timeline = build_timeline(job.path, seconds=self.seconds)
        else:  # shared with `vidagent segments --shots`
            timeline = cached_shot_timeline(
                job.path, self.store, video_hash=job.video_hash, **self.shot_params
            )
        info = timeline.video.model_copy(
            update={"path": str(job.path), "content_hash": job.video_hash}
        )
        return timeline.model_copy(update={"video": info})

    def plan(self, job: VideoJob) -> None:
        from vidagent.store.perception import make_key

        job.started = time.perf_counter()
        job.video_hash = self.store.video_hash(job.path)
        job.timeline = self._timeline(job)
        extra = {
            "segments": _segments_digest(job.timeline.segments),
            "frame_size": self.frame_size,
        }
        for name, tool in self.tools.items():
            params = {**self._tool_fields[name], **extra}
            key = make_key(job.video_hash, name, tool.version, params)
            job.params[name], job.keys[name] = params, key
            hit = self.store.get(key)
            if hit is not None and len(hit.value.get("items", ())) == job.n:
                job.values[name] = hit.value
            else:
                job.todo.append(name)
                job.rows[name] = {}

    # --- feeding frames to the tools' queues ---------------------------------------------------

    def feed(self, job: VideoJob) -> None:
        assert job.timeline is not None
        fed = [n for n in job.todo if n != self.linked or "embedder" not in job.todo]
        self._emit("planned", job, job.n * len(job.todo))
        by_k: dict[int, list[str]] = {}
        for name in fed:
            by_k.setdefault(self.tools[name].params.frames_per_segment, []).append(name)
        info = job.timeline.video
        width, height = decode_size(info.width, info.height, self.frame_size)
        with open_video(job.path, width=width, height=height) as source:
            for k, names in sorted(by_k.items()):
                for start in range(0, job.n, self.chunk):
                    segs = job.timeline.segments[start : start + self.chunk]
                    batches = sample_segments(source, segs, k)
                    for name in names:
                        queue = self.queues[name]
                        queue.extend((job, start + i, fb) for i, fb in enumerate(batches))
                        if len(queue) >= self.chunk:
                            self.flush(name)

    def flush(self, name: str) -> None:
        queue = [entry for entry in self.queues[name] if entry[0].error is None]
        self.queues[name] = []
        if not queue:
            return
        try:
            self._run_tool(name, queue)
        except _StopRun:
            raise
        except Exception as exc:
            jobs = list(dict.fromkeys(job for job, _, _ in queue))
            if len(jobs) == 1:
                self.fail(jobs[0], exc)
            else:  # retry video by video to find the one the batch failed on
                for job in jobs:
                    try:
                        self._run_tool(name, [entry for entry in queue if entry[0] is job])
                    except _StopRun:
                        raise
                    except Exception as exc2:
                        self.fail(job, exc2)
        self._finish_ready(dict.fromkeys(job for job, _, _ in queue))

    def _run_tool(self, name: str, queue: list[tuple[VideoJob, int, FrameBatch]]) -> None:
        try:
            out = self.tools[name].run([fb for _, _, fb in queue])
        except FATAL as exc:
            raise _StopRun(exc) from exc
        self._distribute(name, queue, out)

    def _distribute(
        self, name: str, queue: list[tuple[VideoJob, int, FrameBatch]], out: ToolOutput
    ) -> None:
        for row, (job, pos, _) in enumerate(queue):
            job.rows[name][pos] = (out.items[row], {k: v[row] for k, v in out.arrays.items()})
        if name == "embedder" and self.linked:
            linked = [i for i, (job, _, _) in enumerate(queue) if self.linked in job.todo]
            if linked:
                actions: Any = self.tools[self.linked]
                try:
                    sub = actions.run_embeddings(out.arrays["embeddings"][linked])
                except FATAL as exc:
                    raise _StopRun(exc) from exc
                self._distribute(self.linked, [queue[i] for i in linked], sub)
        for job, count in Counter(job for job, _, _ in queue).items():
            self._emit("segments", job, count)

    # --- finishing ------------------------------------------------------------------------------

    def fail(self, job: VideoJob, exc: BaseException) -> None:
        if job.result is not None:
            return
        job.error = exc
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        job.result = VideoResult(
            path=str(job.path),
            status="failed",
            segments=job.n,
            error=f"{type(exc).__name__}: {message}",
            seconds=time.perf_counter() - job.started,
        )
        self._emit("video", job)

    def _finish_ready(self, jobs: Iterable[VideoJob]) -> None:
        for job in jobs:
            if job.result is None and job.error is None and job.timeline and job.complete():
                try:
                    self.finish(job)
                except Exception as exc:
                    self.fail(job, exc)

    def finish(self, job: VideoJob) -> None:
        assert job.timeline is not None
        for name in job.todo:
            tool = self.tools[name]
            parts = [job.rows[name][i] for i in range(job.n)]
            names = parts[0][1].keys() if parts else ()
            out = ToolOutput(
                [p[0] for p in parts], {a: np.stack([p[1][a] for p in parts]) for a in names}
            )
            value = {"items": out.items, **tool.summary(out)}
            self.store.put(
                job.keys[name],
                value,
                out.arrays or None,
                video_hash=job.video_hash,
                tool=name,
                version=tool.version,
                params=job.params[name],
            )
            job.values[name] = value
        segments: list[Segment] = list(job.timeline.segments)
        for name, tool in self.tools.items():
            segments = tool.annotate(segments, job.values[name], job.keys[name])
        final = job.timeline.model_copy(update={"segments": segments})
        if job.out is not None:
            write_json(job.out, final.model_dump_json(indent=2))
        job.rows.clear()
        job.final = final if job.keep else None
        job.result = VideoResult(
            path=str(job.path),
            status="ok" if job.todo else "cached",
            timeline=str(job.out) if job.out else None,
            segments=job.n,
            computed=list(job.todo),
            cached=[n for n in self.tools if n not in job.todo],
            seconds=time.perf_counter() - job.started,
        )
        self._emit("video", job)

    def run(self, jobs: list[VideoJob]) -> None:
        try:
            for job in jobs:
                try:
                    self.plan(job)
                    if job.todo:
                        self.feed(job)
                    else:
                        self.finish(job)
                except _StopRun:
                    raise
                except Exception as exc:  # unreadable video, failed segmentation, store error
                    self.fail(job, exc)
            for name in self.queues:
                self.flush(name)
        except _StopRun as stop:
            raise stop.error from None
        for job in jobs:  # rows that never all came back: a bug, but keep the summary whole
            if job.result is None:
                self.fail(job, RuntimeError("perception results incomplete"))


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
