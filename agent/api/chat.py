"""Chat about perceived video(s): the settings of a session, the served chat model and the agent.

``vidagent chat`` (terminal) and ``vidagent serve`` (web) build their agents here, so the two
offer the same tools, prompt and limits. Tool calling needs a served LLM: a vLLM server started
with ``--enable-auto-tool-choice --tool-call-parser hermes``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vidagent.api.config import LLMSettings, example_count
from vidagent.api.deps import Deps
from vidagent.core.errors import ConfigError
from vidagent.tasks.steps import TaskOptions

if TYPE_CHECKING:
    from langchain_core.language_models.chat_models import BaseChatModel

    from vidagent.chat import ChatAgent, Toolbox

__all__ = [
    "NO_URL",
    "ChatSettings",
    "build_chat_agent",
    "build_toolbox",
    "served_chat_model",
    "timelines_text",
]

NO_URL = (
    "the chat needs a served LLM (LLMSettings.urls): the agent calls tools, which needs vLLM "
    "started with --enable-auto-tool-choice --tool-call-parser hermes (in process it cannot)"
)


class ChatSettings(BaseModel):
    """How a chat session runs: its tools, limits, examples and system prompt."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_rounds: int = Field(default=4, ge=0, description="Tool-call rounds per answer")
    tool_choice: Literal["auto", "required"] = Field(
        default="auto", description="required: every tool round must call a tool"
    )
    tools: list[str] | None = Field(default=None, description="The chat's tools (None: all)")
    max_tokens: int | None = Field(default=1024, ge=1, description="Per model reply")
    examples: int | None = Field(
        default=None,
        ge=0,
        description="In-context examples of the task tools (None: 4 with a bank)",
    )
    max_timeline_chars: int = Field(default=4000, ge=40, description="Timeline overview size")
    prompt: Path | None = Field(default=None, description="System prompt template (YAML)")

    @field_validator("tools")
    @classmethod
    def _known_tools(cls, names: list[str] | None) -> list[str] | None:
        from vidagent.chat import ALL_TOOLS

        known = [fn.__name__ for fn in ALL_TOOLS]
        for name in names or []:
            if name not in known:
                raise ValueError(f"unknown tool {name!r}; the tools are: {', '.join(known)}")
        return names or None

    def task_options(self, has_bank: bool) -> TaskOptions:
        """The task tools' options (examples resolved against whether a bank is loaded)."""
        return TaskOptions(
            k=example_count(self.examples, has_bank), max_timeline_chars=self.max_timeline_chars
        )


def served_chat_model(llm: LLMSettings, temperature: float = 0.0) -> BaseChatModel:
    """The LangChain chat model on the first served URL (the default model: what it serves)."""
    from vidagent.llm.langchain import make_chat_model

    if not llm.urls:
        raise ConfigError(NO_URL)
    return make_chat_model(llm.llm_config(temperature=temperature))


def build_toolbox(deps: Deps, context: TaskOptions, tools: list[str] | None = None) -> Toolbox:
    """The chat tools (``tools``: these, in this order; None: all) over the perceived video, or
    over each of a folder's videos by name (``context.max_timeline_chars``: overview size)."""
    from vidagent.chat import ALL_TOOLS, Toolbox, VideoContext

    timelines = deps.timelines or {"video": deps.timeline}
    contexts = {
        name: VideoContext(
            timeline=timeline,
            llm=deps.llm,
            store=deps.store,
            query_embedder=deps.query_embedder,
            text_embedder=deps.text_embedder,
            bank=deps.bank,
            context=context,
            overview_chars=context.max_timeline_chars,
            captioner=deps.captioner,
        )
        for name, timeline in timelines.items()
    }
    by_name = {fn.__name__: fn for fn in ALL_TOOLS}
    chosen = [by_name[n] for n in tools] if tools else list(ALL_TOOLS)
    return Toolbox(contexts, chosen)


def build_chat_agent(deps: Deps, settings: ChatSettings, model: BaseChatModel) -> ChatAgent:
    """The agent of one session over ``deps``' video(s), talking through ``model``."""
    from vidagent.api.tasks import load_template
    from vidagent.chat import ChatAgent, system_prompt

    context = settings.task_options(deps.bank is not None)
    toolbox = build_toolbox(deps, context, settings.tools)
    return ChatAgent(
        model,
        toolbox,
        system=system_prompt(toolbox, load_template(settings.prompt)),
        max_rounds=settings.max_rounds,
        max_tokens=settings.max_tokens,
        tool_choice=None if settings.tool_choice == "auto" else settings.tool_choice,
    )


def timelines_text(deps: Deps, max_chars: int) -> str:
    """The perceived timeline(s) as the chat shows them (``/timeline``), each within ``max_chars``;
    several videos are each headed by their name."""
    from vidagent.tasks.steps import timeline_text

    options = TaskOptions(max_timeline_chars=max_chars)
    timelines = deps.timelines or {"video": deps.timeline}
    texts = {name: timeline_text(t, options).text for name, t in timelines.items()}
    if len(texts) == 1:
        return next(iter(texts.values()))
    return "\n\n".join(f"{name}:\n{text}" for name, text in texts.items())
