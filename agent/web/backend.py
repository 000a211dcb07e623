"""What the web app needs from the rest of vidagent, behind one small protocol.

:class:`Backend` perceives a video (its timeline plus what the chat tools need) and makes the chat
model; :class:`ServedBackend` is the real one, built by ``vidagent serve`` from the API's settings
(:class:`~vidagent.api.PerceptionConfig`, :class:`~vidagent.api.LLMSettings`). Tests pass their own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from vidagent.api.config import LLMSettings, PerceptionConfig

if TYPE_CHECKING:
    from langchain_core.language_models.chat_models import BaseChatModel

    from vidagent.api.deps import Deps, SharedDeps
    from vidagent.tools.perceive_records import ProgressEvent


StepsDone = Callable[[int, int], None]
"""``(done, total)`` perception steps (segments times tools) so far."""


class Backend(Protocol):
    def perceive(self, path: Path, progress: StepsDone | None = None) -> Deps:
        """The video's timeline and the tools' dependencies (blocking; runs in a worker);
        ``progress`` is told the steps done as they finish."""
        ...

    def chat_model(self) -> BaseChatModel:
        """The LangChain chat model (blocking; may raise when the server is unreachable)."""
        ...

    def close(self) -> None: ...


@dataclass
class ServedBackend:
    """Perception with ``perception``'s tools and a served vLLM for the chat and the task tools."""

    llm: LLMSettings
    perception: PerceptionConfig = field(default_factory=PerceptionConfig)
    bank: Path | None = None
    temperature: float = 0.0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._shared: SharedDeps | None = None

    def _deps(self) -> SharedDeps:
        """Built once, on first use: the task LLM client, store, text embedder, example bank."""
        from vidagent.api.deps import build_shared

        with self._lock:
            if self._shared is None:
                self._shared = build_shared(self.llm, self.bank)
            return self._shared

    def perceive(self, path: Path, progress: StepsDone | None = None) -> Deps:
        from vidagent.api.deps import Deps
        from vidagent.api.perception import perceive_videos

        shared = self._deps()
        steps = [0, 0]

        def on_event(event: ProgressEvent) -> None:
            if event.kind == "planned":
                steps[1] += event.count
            elif event.kind == "segments":
                steps[0] += event.count
            if progress is not None:
                progress(steps[0], steps[1])

        perceived = perceive_videos(
            [path], self.perception, store=shared.store, on_progress=on_event
        )
        return Deps(
            perceived.timelines[0],
            shared.store,
            shared.llm,
            shared.bank,
            perceived.query_embedder,
            shared.text_embedder,
            captioner=perceived.captioner,
        )

    def chat_model(self) -> BaseChatModel:
        from vidagent.api.chat import served_chat_model

        return served_chat_model(self.llm, self.temperature)

    def close(self) -> None:
        if self._shared is not None:
            self._shared.close()
