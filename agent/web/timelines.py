"""Timelines perceived on demand, for the web app.

Perception runs in one worker thread (it is heavy; the perception store caches its results), the
page polls the state; a failed perception is tried again when asked again.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vidagent.web.config import SegmentOut, TimelineOut, TimelineStatus

if TYPE_CHECKING:
    from vidagent.api.deps import Deps
    from vidagent.web.backend import Backend

log = logging.getLogger("vidagent.web")


@dataclass
class Job:
    status: TimelineStatus = "pending"
    started: float = field(default_factory=time.monotonic)
    error: str | None = None
    deps: Deps | None = None
    steps: tuple[int, int] = (0, 0)
    """Perception steps (segments times tools) done and planned; both 0 until planned."""


class Timelines:
    """One perception job per video id; a failed one is tried again when asked again."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="perceive")

    def status(self, video_id: str) -> TimelineStatus:
        job = self._jobs.get(video_id)
        return job.status if job else "idle"

    def start(self, video_id: str, path: Path) -> Job:
        with self._lock:
            job = self._jobs.get(video_id)
            if job is None or job.status == "error":
                job = self._jobs[video_id] = Job()
                self._pool.submit(self._run, job, path)
            return job

    def _run(self, job: Job, path: Path) -> None:
        job.status, job.started = "running", time.monotonic()
        try:
            job.deps = self.backend.perceive(path, progress=lambda *s: setattr(job, "steps", s))
            job.status = "done"
        except Exception as err:
            log.exception("perception of %s failed", path)
            job.error = f"{type(err).__name__}: {err}" if not str(err) else str(err)
            job.status = "error"

    def deps(self, video_id: str) -> Deps | None:
        job = self._jobs.get(video_id)
        return job.deps if job else None

    def describe(self, video_id: str) -> TimelineOut:
        job = self._jobs.get(video_id)
        if job is None:
            return TimelineOut(video_id=video_id, status="idle")
        out = TimelineOut(
            video_id=video_id,
            status=job.status,
            error=job.error,
            elapsed_s=round(time.monotonic() - job.started, 1),
            steps_done=job.steps[0],
            steps_total=job.steps[1],
        )
        if job.deps is not None:
            timeline = job.deps.timeline
            out.duration = timeline.video.duration
            out.segments = [
                SegmentOut(
                    index=s.index,
                    token=s.token,
                    start=s.start,
                    end=s.end,
                    caption=s.captions[0].text if s.captions else "",
                    actions=[a.text for a in s.actions[:3]],
                )
                for s in timeline.segments
            ]
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
