"""Timelines perceived on demand and chat sessions, for the web app.

Perception runs in one worker thread (it is heavy; the perception store caches its results), the
page polls the state. A chat session holds one :class:`~agent.chat.ChatAgent` and one lock: a turn
runs in a thread and streams its events as Server-Sent Events; a turn that fails (server down,
prompt too long) ends with an ``error`` event and the session goes on.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.web.config import SegmentOut, ServeConfig, TimelineOut, TimelineStatus

if TYPE_CHECKING:
    from agent.chat import ChatAgent
    from agent.deps import Deps
    from agent.web.backend import Backend

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


@dataclass
class Session:
    id: str
    video_id: str
    deps: Deps
    lock: threading.Lock = field(default_factory=threading.Lock)
    agent: ChatAgent | None = None
    turns: int = 0


def sse(event: str, data: dict[str, Any]) -> str:
    """One Server-Sent Event with a JSON payload."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


class Sessions:
    """Chat sessions by id; the agent (and the chat model) is built on the first question."""

    def __init__(self, backend: Backend, config: ServeConfig) -> None:
        self.backend = backend
        self.config = config
        self._sessions: dict[str, Session] = {}

    def create(self, video_id: str, deps: Deps) -> Session:
        session = Session(uuid.uuid4().hex, video_id, deps)
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str) -> Session | None:
        return self._sessions.get(session_id)

    def delete(self, session_id: str) -> bool:
        return self._sessions.pop(session_id, None) is not None

    def _agent(self, session: Session) -> ChatAgent:
        if session.agent is None:
            from agent.chat import ChatAgent, system_prompt
            from agent.chat_cli import build_toolbox
            from agent.prompting import load_prompt
            from agent.tasks.context import ContextOptions

            config = self.config
            context = ContextOptions(k=config.k, max_timeline_chars=config.max_timeline_chars)
            toolbox = build_toolbox(session.deps, context, config.tools)
            template = load_prompt(config.prompt) if config.prompt is not None else None
            session.agent = ChatAgent(
                self.backend.chat_model(),
                toolbox,
                system=system_prompt(toolbox, template),
                max_rounds=config.max_rounds,
                max_tokens=config.max_tokens,
                tool_choice=None if config.tool_choice == "auto" else config.tool_choice,
            )
        return session.agent

    def turn(self, session: Session, text: str) -> Iterator[str]:
        """The turn's events as SSE text; the caller holds ``session.lock``, released at the end."""
        from agent.chat import TextChunk, ToolCallEvent, ToolResultEvent

        chunks = 0
        try:
            agent = self._agent(session)
            for event in agent.stream(text):
                if isinstance(event, TextChunk):
                    chunks += 1
                    yield sse("text", {"text": event.text})
                elif isinstance(event, ToolCallEvent):
                    args = event.arguments
                    yield sse("tool_call", {"id": event.id, "name": event.name, "arguments": args})
                elif isinstance(event, ToolResultEvent):
                    yield sse(
                        "tool_result",
                        {
                            "id": event.id,
                            "name": event.name,
                            "content": event.content,
                            "error": event.error,
                        },
                    )
            session.turns += 1
            yield sse("done", {"chunks": chunks, "turns": session.turns})
        except Exception as err:  # the turn is dropped from the history; the session goes on
            log.warning("chat turn failed: %s: %s", type(err).__name__, err)
            detail = str(err).strip() or type(err).__name__
            yield sse("error", {"detail": detail[:1000]})
        finally:
            session.lock.release()
