"""Chat sessions of the web app, and the turn that answers one question as Server-Sent Events.

A session holds one :class:`~vidagent.chat.ChatAgent` (built on its first question) and at most
one running :class:`Turn`. A turn runs the agent in its own worker thread and hands the events to
the HTTP response through a queue, so the response never waits on the model and the session never
waits on the response:

- the session is freed the moment its turn ends, however it ends: answered (``done``), failed
  (``error``; the session goes on), its client gone (before the first event, between events, in a
  tool call, while the model is still generating), the response closed, cancelled or garbage
  collected, the session reset or deleted. Nothing of an unfinished turn stays in the conversation;
- a worker cannot be interrupted inside a model call or a tool: a cancelled turn's worker stops at
  its next event (which also closes the model's stream). Until then it works on a copy of the
  agent taken when it started, so the session goes on at once with the conversation as it was;
- reset never waits: it cancels the running turn (its client gets an ``error`` event saying so) and
  clears the conversation;
- at most ``max_sessions`` sessions exist: idle ones expire after ``session_idle_s``; when full, a
  new session replaces the least recently used idle one, and when every one is answering a
  question, creating one fails with :class:`SessionsFull`. At most twice as many worker threads run
  (those of cancelled turns included); beyond that a question fails with :class:`TooManyTurns`.

The lock of :class:`Sessions` guards every session's state; it is held only for a few assignments,
never while the model, a tool or the network is waited on.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import threading
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vidagent.core.errors import VidagentError
from vidagent.web.config import ServeConfig

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

    from vidagent.api.deps import Deps
    from vidagent.chat import ChatAgent, ChatEvent
    from vidagent.web.backend import Backend

log = logging.getLogger("vidagent.web")

GONE = "the client went away"
RESET = "the conversation was reset"
DELETED = "the chat session was deleted"
CLOSED = "the server is shutting down"


class SessionBusy(VidagentError):
    """The session is still answering its previous question (HTTP 409)."""


class SessionsFull(VidagentError):
    """Every session is answering a question, none can make room for a new one (HTTP 503)."""


class TooManyTurns(VidagentError):
    """Too many answers are being computed at once (HTTP 503)."""


def sse(event: str, data: dict[str, Any]) -> str:
    """One Server-Sent Event with a JSON payload."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@dataclass(eq=False)
class Session:
    id: str
    video_id: str
    deps: Deps
    agent: ChatAgent | None = None
    turns: int = 0
    last_used: float = field(default_factory=time.monotonic)
    turn_ref: weakref.ref[Turn] | None = None
    """The running turn, weakly: a turn nobody holds any more is collected and frees the session."""

    @property
    def busy(self) -> bool:
        turn = self.turn_ref() if self.turn_ref is not None else None
        return turn is not None and not turn.finished


Put = Callable[[str | None], None]


class Turn:
    """One question being answered. :meth:`events` streams it; :meth:`cancel` ends it at once."""

    def __init__(self, sessions: Sessions, session: Session, text: str) -> None:
        self._sessions = sessions
        self._lock = sessions.lock
        self.session = session
        self.text = text
        self.finished = False
        """Answered, failed or cancelled: the session is no longer this turn's."""
        self._reason = ""
        self._cancelled = threading.Event()
        self._slot = True  # counted in Sessions.workers until the worker exits (or never starts)
        self._started = False
        self._put: Put | None = None
        self._agent: ChatAgent | None = None  # the worker's agent while its stream is open
        self._history: list[BaseMessage] = []  # the conversation before this turn

    async def events(self) -> AsyncIterator[str]:
        """The turn's events as SSE text; the turn is cancelled when this ends early."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue()

        def put(item: str | None) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is listening
                loop.call_soon_threadsafe(queue.put_nowait, item)

        with self._lock:
            cancelled = self.finished  # before it started (reset, deleted)
            if not cancelled:
                self._put, self._started = put, True
        if cancelled:
            yield sse("error", {"detail": self._reason})
            return
        try:
            worker = threading.Thread(target=self._run, name=f"chat-{self.session.id[:8]}")
            worker.daemon = True  # a model that never answers does not keep the server up
            try:
                worker.start()
            except RuntimeError:  # no thread to be had
                with self._lock:
                    self._free_slot()
                raise
            while (item := await queue.get()) is not None:
                yield item
        finally:
            self.cancel(GONE)

    def cancel(self, reason: str) -> None:
        """End the turn now (no-op once it ended) and free its session; never blocks."""
        with self._lock:
            if self.finished:
                return
            self.finished = True
            self._reason = reason
            self._cancelled.set()
            self._sessions.release(self)
            if self._agent is not None and self.session.agent is self._agent:
                # The worker is still inside the agent: it rolls its own history back when it
                # stops; the session goes on with a copy holding the conversation before the turn.
                fork = copy.copy(self._agent)
                fork.history = list(self._history)
                self.session.agent = fork
            if not self._started:
                self._free_slot()
            put = self._put
        if put is not None:
            put(sse("error", {"detail": reason}))
            put(None)

    def __del__(self) -> None:  # a turn nobody streams or holds any more
        with contextlib.suppress(Exception):
            self.cancel(GONE)

    def _free_slot(self) -> None:
        if self._slot:
            self._slot = False
            self._sessions.workers -= 1

    def _attach(self) -> ChatAgent | None:
        """The session's agent (built on the first question), or None when already cancelled."""
        session = self.session
        agent = session.agent
        if agent is None:
            agent = self._sessions.build_agent(session)
        with self._lock:
            if self.finished:
                return None
            if session.agent is None:
                session.agent = agent
            self._agent = session.agent
            self._history = list(self._agent.history)
            return self._agent

    def _complete(self) -> int | None:
        """Mark the turn answered; the session's turn count, or None when it was cancelled."""
        with self._lock:
            if self.finished:
                return None
            self.finished = True
            self._agent = None  # the answered turn stays in the conversation
            self.session.turns += 1
            self._sessions.release(self)
            return self.session.turns

    def _fail(self) -> bool:
        """Free the session after a failure; False when the turn was cancelled meanwhile."""
        with self._lock:
            if self.finished:
                return False
            self.finished = True
            self._sessions.release(self)
            return True

    def _run(self) -> None:
        put = self._put
        assert put is not None
        stream = None
        chunks = 0
        try:
            agent = self._attach()
            if agent is None:
                return
            stream = agent.stream(self.text)
            for event in stream:
                if self._cancelled.is_set():
                    return
                chunks += event_chunks(event)
                put(event_sse(event))
            turns = self._complete()
            if turns is not None:
                put(sse("done", {"chunks": chunks, "turns": turns}))
        except Exception as err:  # the turn is dropped from the history; the session goes on
            if self._fail():
                log.warning("chat turn failed: %s: %s", type(err).__name__, err)
                detail = str(err).strip() or type(err).__name__
                put(sse("error", {"detail": detail[:1000]}))
        finally:
            close = getattr(stream, "close", None)  # a generator's: ends the model's stream,
            if close is not None:  # and an unfinished turn rolls the agent's history back
                with contextlib.suppress(Exception):
                    close()
            with self._lock:
                self._agent = None
                self._free_slot()
                self._fail()  # no-op unless a BaseException ended the worker
            put(None)


def event_chunks(event: ChatEvent) -> int:
    from vidagent.chat import TextChunk

    return 1 if isinstance(event, TextChunk) else 0


def event_sse(event: ChatEvent) -> str:
    """A chat event as the SSE the page reads (``text``, ``tool_call``, ``tool_result``)."""
    from vidagent.chat import TextChunk, ToolCallEvent

    if isinstance(event, TextChunk):
        return sse("text", {"text": event.text})
    if isinstance(event, ToolCallEvent):
        return sse("tool_call", {"id": event.id, "name": event.name, "arguments": event.arguments})
    return sse(
        "tool_result",
        {"id": event.id, "name": event.name, "content": event.content, "error": event.error},
    )


class Sessions:
    """Chat sessions by id, at most ``config.max_sessions``; see the module docstring."""

    def __init__(
        self,
        backend: Backend,
        config: ServeConfig,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self.config = config
        self.clock = clock
        self.lock = threading.RLock()  # reentrant: a turn collected while it is held frees here
        self.workers = 0
        """Turns that hold a worker thread (or will): at most ``2 * max_sessions``."""
        self._sessions: dict[str, Session] = {}

    @property
    def max_workers(self) -> int:
        return 2 * self.config.max_sessions

    def _expired(self, session: Session, now: float) -> bool:
        return not session.busy and now - session.last_used > self.config.session_idle_s

    def create(self, video_id: str, deps: Deps) -> Session:
        """A new session; raises :class:`SessionsFull` when every session is busy."""
        with self.lock:
            now = self.clock()
            for old in [s for s in self._sessions.values() if self._expired(s, now)]:
                del self._sessions[old.id]
            if len(self._sessions) >= self.config.max_sessions:
                idle = [s for s in self._sessions.values() if not s.busy]
                if not idle:
                    raise SessionsFull(
                        f"all {self.config.max_sessions} chat sessions are answering a question; "
                        "try again when one has finished (the server's --max-sessions)"
                    )
                victim = min(idle, key=lambda s: s.last_used)
                log.info("chat session %s closed to make room", victim.id)
                del self._sessions[victim.id]
            session = Session(uuid.uuid4().hex, video_id, deps, last_used=now)
            self._sessions[session.id] = session
            return session

    def get(self, session_id: str) -> Session | None:
        """The session (its idle time starts again), or None: unknown, deleted or expired."""
        with self.lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            now = self.clock()
            if self._expired(session, now):
                del self._sessions[session_id]
                return None
            session.last_used = now
            return session

    def __len__(self) -> int:
        return len(self._sessions)

    def start_turn(self, session: Session, text: str) -> Turn:
        """Claim the session for a question; raises :class:`SessionBusy`, :class:`TooManyTurns`."""
        with self.lock:
            if session.busy:
                raise SessionBusy("this session is still answering the previous question")
            if self.workers >= self.max_workers:
                raise TooManyTurns(
                    f"{self.workers} answers are being computed; try again in a moment"
                )
            turn = Turn(self, session, text)
            self.workers += 1
            session.turn_ref = weakref.ref(turn)
            session.last_used = self.clock()
            return turn

    def release(self, turn: Turn) -> None:
        """The session is free again (the caller holds the lock)."""
        session = turn.session
        if session.turn_ref is not None and session.turn_ref() in (turn, None):
            session.turn_ref = None
        session.last_used = self.clock()

    def _running(self, session: Session) -> Turn | None:
        turn = session.turn_ref() if session.turn_ref is not None else None
        return turn if turn is not None and not turn.finished else None

    def reset(self, session: Session) -> None:
        """Cancel the running turn, if any, and forget the conversation; never blocks."""
        with self.lock:
            turn = self._running(session)
            if turn is not None:
                turn.cancel(RESET)  # the session's agent is now one the worker does not touch
            if session.agent is not None:
                session.agent.reset()
            session.turns = 0

    def delete(self, session_id: str) -> bool:
        with self.lock:
            session = self._sessions.pop(session_id, None)
            turn = self._running(session) if session is not None else None
        if turn is not None:
            turn.cancel(DELETED)
        return session is not None

    def close(self) -> None:
        """Cancel every running turn (server shutdown)."""
        with self.lock:
            turns = [t for s in self._sessions.values() if (t := self._running(s)) is not None]
        for turn in turns:
            turn.cancel(CLOSED)

    def build_agent(self, session: Session) -> ChatAgent:
        from vidagent.api.chat import build_chat_agent

        return build_chat_agent(session.deps, self.config, self.backend.chat_model())
