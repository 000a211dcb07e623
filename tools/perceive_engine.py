"""The engine of the perception pipeline (:mod:`vidagent.tools.perceive` has the entry points).

:class:`Engine` plans each video (hash, segments, store look-ups), claims what it must compute,
queues decoded segments per tool across videos, runs a tool when its queue holds
``chunk_segments`` segments (or at the end), stores each finished chunk and each finished
(video, tool) result (:class:`vidagent.tools.perceive_store.JobStore`), then waits for what other
runs hold. A batch that fails is retried video by video to find the culprit; errors that would
fail every video (:data:`FATAL`) stop the run.

Batch composition: a segment's numbers may differ in the last float bits with the other segments
of its batch (BLAS / cuDNN kernels pick blockings by shape); see the README ("Perception with
--engine ray") for the measured bound. Results are not keyed on batch composition, like
``batch_size``: the store keeps the first result computed and every later run reads it.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from vidagent.core.errors import ConfigError, MissingDependencyError
from vidagent.core.records import Segment, Timeline
from vidagent.store.claims import CLAIM_TTL_S
from vidagent.tools.models import ModelLoadError, PerceptionTool, ToolOutput
from vidagent.tools.perceive_records import (
    Progress,
    ProgressEvent,
    VideoJob,
    VideoResult,
    decode_size,
    write_json,
)
from vidagent.tools.perceive_store import JobStore
from vidagent.tools.sampling import sample_segments
from vidagent.tools.video import FrameBatch, open_video

FATAL = (ModelLoadError, MissingDependencyError, ConfigError)
"""Errors of a tool's set-up or run that would repeat on every video: they stop the run."""
POLL_S = 0.5
"""Seconds between looks at the store while another run holds the claims a video waits for."""

__all__ = ["FATAL", "POLL_S", "Engine"]


class _StopRun(Exception):
    """Carries an error of a tool that would fail every video (:data:`FATAL`) out of the run."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


Entry = tuple[VideoJob, int, FrameBatch]
"""One segment waiting in a tool's queue: its video's job, its position, its frames."""


class Engine:
    """The pipeline over video jobs: :meth:`plan` (hash, segment, look up the store), claiming,
    batching across videos, running the tools that missed, :meth:`finish` / :meth:`fail` per
    video. :func:`perceive_many` runs it in process; :mod:`vidagent.tools.perceive_ray` plans on
    the driver with it and runs the rest on Ray actors. Store I/O (keys, claims, chunks, final
    records) is :class:`vidagent.tools.perceive_store.JobStore`'s."""

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
        claim_ttl_s: float = CLAIM_TTL_S,
        poll_s: float = POLL_S,
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
        self.claim_ttl_s, self.poll_s = claim_ttl_s, poll_s
        self.queues: dict[str, list[Entry]] = {n: [] for n in names}
        self.linked = self._linked_actions()
        fields = {
            t.name: t.cache_params(hasher=store.video_hash) for t in tools
        }  # validates files and devices before any video is touched
        self.io = JobStore(
            store, self.tools, fields, frame_size=frame_size, chunk=chunk_segments,
            linked=self.linked,
        )  # fmt: skip

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
        job.started = time.perf_counter()
        job.video_hash = self.store.video_hash(job.path)
        job.timeline = self._timeline(job)
        self.io.lookup(job)

    # --- feeding frames to the tools' queues ---------------------------------------------------

    def feed(self, job: VideoJob, names: Sequence[str] | None = None) -> None:
        """Queue the frames of what ``names`` (default: ``job.todo``) still miss for ``job``,
        after loading the chunks an earlier run stored."""
        assert job.timeline is not None
        names = list(job.todo if names is None else names)
        self.io.resume(job, names)
        self._emit("planned", job, sum(job.n - len(job.rows.get(n, ())) for n in names))
        self._store_ready([job])  # a tool whose every chunk was stored is complete already
        fed = [n for n in names if n != self.linked or "embedder" not in names]
        by_k: dict[int, list[str]] = {}
        for name in fed:
            by_k.setdefault(self.tools[name].params.frames_per_segment, []).append(name)
        info = job.timeline.video
        width, height = decode_size(info.width, info.height, self.frame_size)
        with open_video(job.path, width=width, height=height) as source:
            for k, group in sorted(by_k.items()):
                for start in range(0, job.n, self.chunk):
                    span = range(start, min(job.n, start + self.chunk))
                    need = [n for n in group if _missing(job, n, span)]
                    if not need or job.error is not None:
                        continue
                    batches = sample_segments(
                        source, job.timeline.segments[span.start : span.stop], k
                    )
                    for name in need:
                        queue = self.queues[name]
                        queue.extend((job, span.start + i, fb) for i, fb in enumerate(batches))
                        if len(queue) >= self.chunk:
                            self.flush(name)
        self._finish_ready([job])

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
        touched = list(dict.fromkeys(job for job, _, _ in queue))
        self._store_ready(touched)
        self._finish_ready(touched)

    def _flush_all(self) -> None:
        for name in self.queues:
            self.flush(name)

    def _run_tool(self, name: str, queue: list[Entry]) -> None:
        try:
            out = self.tools[name].run([fb for _, _, fb in queue])
        except FATAL as exc:
            raise _StopRun(exc) from exc
        self._distribute(name, queue, out)

    def _distribute(self, name: str, queue: list[Entry], out: ToolOutput) -> None:
        done: Counter[VideoJob] = Counter()
        for row, (job, pos, _) in enumerate(queue):
            rows = job.rows.get(name)
            if rows is not None and pos not in rows:
                rows[pos] = (out.items[row], {k: v[row] for k, v in out.arrays.items()})
                done[job] += 1
        if name == "embedder" and self.linked:
            linked = [
                i for i, (job, pos, _) in enumerate(queue) if _missing(job, self.linked, [pos])
            ]
            if linked:
                actions: Any = self.tools[self.linked]
                try:
                    sub = actions.run_embeddings(out.arrays["embeddings"][linked])
                except FATAL as exc:
                    raise _StopRun(exc) from exc
                self._distribute(self.linked, [queue[i] for i in linked], sub)
        for job, count in done.items():
            self._emit("segments", job, count)

    # --- waiting for other runs' claims -----------------------------------------------------------

    def _wait(self, jobs: Sequence[VideoJob]) -> None:
        """Until no job waits: take results other runs stored, compute what their lapsed claims
        leave, sleep ``poll_s`` between looks."""
        while True:
            pending = [j for j in jobs if j.waiting and j.result is None and j.error is None]
            if not pending:
                return
            try:
                taken = self.io.poll(pending)
            except Exception as exc:  # the store failed: every waiting video with it
                for job in pending:
                    self.fail(job, exc)
                return
            for job, names in taken.items():
                try:
                    self.feed(job, names)
                except _StopRun:
                    raise
                except Exception as exc:
                    self.fail(job, exc)
            self._flush_all()
            self._finish_ready(pending)
            if any(j.waiting and j.result is None and j.error is None for j in pending):
                time.sleep(self.poll_s)

    # --- finishing ------------------------------------------------------------------------------

    def fail(self, job: VideoJob, exc: BaseException) -> None:
        if job.result is not None:
            return
        job.error = exc
        with contextlib.suppress(Exception):  # a failing store: the claims lapse with the run
            self.io.release(job)  # let another run try it
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        job.result = VideoResult(
            path=str(job.path),
            status="failed",
            segments=job.n,
            error=f"{type(exc).__name__}: {message}",
            seconds=time.perf_counter() - job.started,
        )
        self._emit("video", job)

    def _store_ready(self, jobs: Iterable[VideoJob]) -> None:
        """Store the chunks and final records ``jobs`` have completed."""
        for job in jobs:
            if job.result is None and job.error is None:
                try:
                    for name in list(job.todo):
                        self.io.save_ready(job, name)
                except Exception as exc:
                    self.fail(job, exc)

    def _finish_ready(self, jobs: Iterable[VideoJob]) -> None:
        for job in jobs:
            if job.result is None and job.error is None and job.timeline and job.complete():
                try:
                    self.finish(job)
                except Exception as exc:
                    self.fail(job, exc)

    def finish(self, job: VideoJob) -> None:
        """Annotate the segments with every tool's stored result; write the timeline."""
        assert job.timeline is not None
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
        """Plan, claim, compute and finish ``jobs``; then wait for what other runs hold."""
        make_claims = getattr(self.store, "claims", None)
        claims = make_claims(ttl_s=self.claim_ttl_s) if callable(make_claims) else None
        self.io.claims = claims
        try:
            for job in jobs:
                try:
                    self.plan(job)
                    self.io.claim(job)
                    if job.todo:
                        self.feed(job)
                    elif not job.waiting:
                        self.finish(job)
                except _StopRun:
                    raise
                except Exception as exc:  # unreadable video, failed segmentation, store error
                    self.fail(job, exc)
            self._flush_all()
            self._wait(jobs)
        except _StopRun as stop:
            raise stop.error from None
        finally:
            self.io.claims = None
            if claims is not None:
                claims.close()
        for job in jobs:  # rows that never all came back: a bug, but keep the summary whole
            if job.result is None:
                self.fail(job, RuntimeError("perception results incomplete"))


def _missing(job: VideoJob, name: str, positions: Iterable[int]) -> bool:
    """Whether ``name`` still needs a row of ``job`` at one of ``positions``."""
    rows = job.rows.get(name)
    return rows is not None and any(pos not in rows for pos in positions)
