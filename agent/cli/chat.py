"""``vidagent chat VIDEO``: talk about a video with a tool-using agent in the terminal.

Perception uses the shared options and defaults (:mod:`vidagent.cli.options`); the agent is built
by :func:`vidagent.api.chat.build_chat_agent`, as in ``vidagent serve``. Tool calling needs a
served LLM: a vLLM OpenAI-compatible server started with ``--enable-auto-tool-choice
--tool-call-parser hermes`` (``--llm-url``); the in-process backends have no tool calling, so
there is no fallback to them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from vidagent.api.config import LLMSettings, PerceptionConfig
from vidagent.cli.options import (
    CHAT,
    EXAMPLES,
    LLM,
    PERCEPTION,
    ChatOptions,
    Examples,
    tool_names,
    with_options,
)
from vidagent.cli.progress import perception_progress, stderr_console
from vidagent.core.errors import ConfigError

NO_URL = (
    "vidagent chat needs --llm-url URL: the agent calls tools, which needs a served vLLM started "
    "with --enable-auto-tool-choice --tool-call-parser hermes (the in-process backends cannot)"
)

tool_options = tool_names
"""Check ``--tool-choice`` and ``--tools`` (see :func:`vidagent.cli.options.tool_names`)."""

__all__ = ["NO_URL", "chat", "tool_options"]


@with_options(LLM, EXAMPLES, PERCEPTION, CHAT)
def chat(
    video: Annotated[
        Path,
        typer.Argument(
            help="A video file, or a folder of videos (chat about all of them).", metavar="VIDEO"
        ),
    ],
    *,
    llm: LLMSettings,
    examples: Examples,
    perception: PerceptionConfig,
    chat_options: ChatOptions,
) -> None:
    """Chat about a video (or a folder of videos) with an agent that uses tools and cites segments.

    The first run perceives the video(s) with a progress bar; later runs reuse the cache. Commands:
    /help, /timeline, /reset, /quit; Ctrl-C stops the current answer.
    """
    from vidagent.api.chat import build_chat_agent, served_chat_model, timelines_text
    from vidagent.api.deps import build_deps
    from vidagent.api.tasks import load_template
    from vidagent.cli.chat_repl import enable_line_history, run_repl
    from vidagent.tools.video_files import videos_in

    if not llm.urls:
        raise ConfigError(NO_URL)
    settings = chat_options.settings(examples)
    load_template(settings.prompt)  # a broken prompt file is reported before anything loads
    model = served_chat_model(llm, chat_options.temperature)
    count = len(videos_in(video)) if video.is_dir() else 1
    with stderr_console() as err, perception_progress(count, err) as on_progress:
        deps = build_deps(
            video, llm=llm, perception=perception, bank=examples.bank, folder=True,
            on_progress=on_progress,
        )  # fmt: skip
    try:
        agent = build_chat_agent(deps, settings, model)
        timeline = timelines_text(deps, settings.max_timeline_chars)
        enable_line_history()
        code = run_repl(agent, Console(), timeline=timeline)
    finally:
        deps.llm.close()
    if code:
        raise typer.Exit(code)
