"""What the web app needs from the rest of vidagent, behind one small protocol.

:class:`Backend` perceives a video (its timeline plus what the chat tools need) and makes the chat
model; :class:`ServedBackend` is the real one, built by ``vidagent serve`` from the options of
``vidagent chat``. Tests pass their own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from langchain_core.language_models.chat_models import BaseChatModel

    from agent.deps import Deps, SharedDeps


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
    """Perception with the given tools and a served vLLM for the chat and the task tools."""

    llm_url: list[str]
    llm_model: str
    captioner: str
    embedder: str
    captioner_url: str | None = None
    taxonomy: Path | None = None
    bank: Path | None = None
    seconds: float = 2.0
    device: str = "auto"
    temperature: float = 0.0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._shared: SharedDeps | None = None

    def _deps(self) -> SharedDeps:
        """Built once, on first use: the task LLM client, store, text embedder, example bank."""
        from agent.deps import build_shared

        with self._lock:
            if self._shared is None:
                self._shared = build_shared(self.llm_url, self.llm_model, self.bank)
            return self._shared

    def perceive(self, path: Path, progress: StepsDone | None = None) -> Deps:
        from agent.deps import Deps, captioner_of, perceive_videos

        shared = self._deps()
        steps = [0, 0]

        def on_event(event: Any) -> None:
            if event.kind == "planned":
                steps[1] += event.count
            elif event.kind == "segments":
                steps[0] += event.count
            if progress is not None:
                progress(steps[0], steps[1])

        timelines, tools = perceive_videos(
            [path],
            captioner=self.captioner,
            captioner_url=self.captioner_url,
            embedder=self.embedder,
            taxonomy=self.taxonomy,
            seconds=self.seconds,
            device=self.device,
            store=shared.store,
            progress=on_event,
        )
        return Deps(
            timelines[0],
            shared.store,
            shared.llm,
            shared.bank,
            tools["embedder"],
            shared.text_embedder,
            captioner=captioner_of(tools),
        )

    def chat_model(self) -> BaseChatModel:
        from agent.chat_cli import served_chat_model

        return served_chat_model(self.llm_url, self.llm_model, self.temperature)

    def close(self) -> None:
        if self._shared is not None:
            self._shared.llm.close()
