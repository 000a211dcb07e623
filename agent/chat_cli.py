"""``vidagent chat VIDEO``: talk about a video with a tool-using agent in the terminal.

Perception uses the options and defaults of ``vidagent ask`` (:func:`agent.deps.build_deps`).
Tool calling needs a served LLM: a vLLM OpenAI-compatible server started with
``--enable-auto-tool-choice --tool-call-parser hermes`` (``--llm-url``); the in-process backends
have no tool calling, so there is no fallback to them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from agent.deps import Deps
from agent.errors import ConfigError
from agent.task_cli import (
    BankOpt,
    CaptionerOpt,
    CaptionerUrlOpt,
    DeviceOpt,
    EmbedderOpt,
    KOpt,
    LLMModelOpt,
    LLMUrlOpt,
    MaxCharsOpt,
    PromptOpt,
    SecondsOpt,
    TaxonomyOpt,
)
from agent.tasks.context import DEFAULT_LLM_MODEL, ContextOptions
from tools.captioner import DEFAULT_CAPTIONER
from tools.embedder import DEFAULT_VISUAL_MODEL

if TYPE_CHECKING:
    from langchain_core.language_models.chat_models import BaseChatModel

    from agent.chat import Toolbox

ToolChoiceOpt = Annotated[
    str,
    typer.Option(
        "--tool-choice",
        help="auto: the model decides; required: every tool round must call a tool "
        "(helps small models; the answer comes after --max-rounds rounds).",
    ),
]
ToolsOpt = Annotated[
    str | None,
    typer.Option(
        "--tools",
        help="Comma-separated tools the agent may use (default: all of "
        "timeline_overview, describe_moment, find_moments, actions_between, localize, "
        "answer_choice); fewer tools leave more context to a small model.",
        show_default=False,
    ),
]
MaxRoundsOpt = Annotated[
    int, typer.Option("--max-rounds", min=0, help="Tool-call rounds per answer.")
]
MaxTokensOpt = Annotated[
    int, typer.Option("--max-tokens", min=1, help="Longest model reply (tokens).")
]
TemperatureOpt = Annotated[
    float, typer.Option("--temperature", min=0.0, help="Sampling temperature of the chat.")
]


def tool_options(tool_choice: str, tools: str | None) -> list[str] | None:
    """Check ``--tool-choice`` and ``--tools``; the tool names in the order given (None: all)."""
    from agent.chat import ALL_TOOLS

    if tool_choice not in ("auto", "required"):
        raise ConfigError(f"--tool-choice {tool_choice!r}: choose 'auto' or 'required'")
    names = [t.strip() for t in (tools or "").split(",") if t.strip()] or None
    known = [fn.__name__ for fn in ALL_TOOLS]
    for name in names or []:
        if name not in known:
            raise ConfigError(f"--tools: unknown tool {name!r}; the tools are: {', '.join(known)}")
    return names


NO_URL = (
    "vidagent chat needs --llm-url URL: the agent calls tools, which needs a served vLLM started "
    "with --enable-auto-tool-choice --tool-call-parser hermes (the in-process backends cannot)"
)


def served_chat_model(llm_url: list[str], llm_model: str, temperature: float) -> BaseChatModel:
    """The LangChain chat model on the first served URL (``llm_model`` default: what it serves)."""
    from agent.llm.config import LLMConfig
    from agent.llm.langchain import make_chat_model

    served = None if llm_model == DEFAULT_LLM_MODEL else llm_model
    return make_chat_model(LLMConfig(urls=list(llm_url), model=served, temperature=temperature))


def build_toolbox(deps: Deps, context: ContextOptions, tools: list[str] | None = None) -> Toolbox:
    """The chat tools (``tools``: these, in this order; None: all) over the perceived video, or
    over each of a folder's videos by name (``context.max_timeline_chars``: overview size)."""
    from agent.chat import ALL_TOOLS, Toolbox, VideoContext

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


def chat(
    video: Annotated[
        Path, typer.Argument(help="A video file, or a folder of videos (chat about all of them).")
    ],
    llm_url: LLMUrlOpt = None,
    llm_model: LLMModelOpt = DEFAULT_LLM_MODEL,
    bank: BankOpt = None,
    k: KOpt = 4,
    prompt: PromptOpt = None,
    captioner: CaptionerOpt = DEFAULT_CAPTIONER,
    captioner_url: CaptionerUrlOpt = None,
    embedder: EmbedderOpt = DEFAULT_VISUAL_MODEL,
    taxonomy: TaxonomyOpt = None,
    seconds: SecondsOpt = 2.0,
    device: DeviceOpt = "auto",
    max_timeline_chars: MaxCharsOpt = 4000,
    max_rounds: MaxRoundsOpt = 4,
    tool_choice: ToolChoiceOpt = "auto",
    tools: ToolsOpt = None,
    max_tokens: MaxTokensOpt = 1024,
    temperature: TemperatureOpt = 0.0,
) -> None:
    """Chat about a video (or a folder of videos) with an agent that uses tools and cites segments.

    The first run perceives the video(s) with a progress bar; later runs reuse the cache. Commands:
    /help, /timeline, /reset, /quit; Ctrl-C stops the current answer.
    """
    from agent.chat import ChatAgent, system_prompt
    from agent.chat.repl import enable_line_history, run_repl
    from agent.deps import build_deps
    from agent.prompting import load_prompt
    from agent.tasks.context import timeline_text

    if not llm_url:
        raise ConfigError(NO_URL)
    tool_names = tool_options(tool_choice, tools)
    template = load_prompt(prompt) if prompt is not None else None
    model = served_chat_model(llm_url, llm_model, temperature)
    deps = build_deps(
        video,
        llm_url=llm_url,
        llm_model=llm_model,
        bank=bank,
        captioner=captioner,
        captioner_url=captioner_url,
        embedder=embedder,
        taxonomy=taxonomy,
        seconds=seconds,
        device=device,
        folder=True,
    )
    context = ContextOptions(k=k, max_timeline_chars=max_timeline_chars)
    toolbox = build_toolbox(deps, context, tool_names)
    agent = ChatAgent(
        model,
        toolbox,
        system=system_prompt(toolbox, template),
        max_rounds=max_rounds,
        max_tokens=max_tokens,
        tool_choice=None if tool_choice == "auto" else tool_choice,
    )
    timeline = "\n\n".join(
        f"{name}:\n{timeline_text(t, context).text}"
        if len(deps.timelines) > 1
        else timeline_text(t, context).text
        for name, t in deps.timelines.items()
    )
    enable_line_history()
    try:
        code = run_repl(agent, Console(), timeline=timeline)
    finally:
        deps.llm.close()
    if code:
        raise typer.Exit(code)


__all__ = [
    "NO_URL",
    "MaxRoundsOpt",
    "MaxTokensOpt",
    "TemperatureOpt",
    "ToolChoiceOpt",
    "ToolsOpt",
    "build_toolbox",
    "chat",
    "served_chat_model",
    "tool_options",
]
