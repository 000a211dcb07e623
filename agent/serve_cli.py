"""``vidagent serve``: the web chat (video picker and upload, player, timeline, streaming chat).

A thin shell over :func:`agent.web.create_app`: it builds the :class:`~agent.web.ServedBackend`
from the options of ``vidagent chat`` and runs uvicorn. It binds to 127.0.0.1 unless told
otherwise and warns when it listens on another address without an API key.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from agent.chat_cli import (
    NO_URL,
    MaxRoundsOpt,
    MaxTokensOpt,
    TemperatureOpt,
    ToolChoiceOpt,
    ToolsOpt,
    tool_options,
)
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
from agent.tasks.context import DEFAULT_LLM_MODEL
from tools.captioner import DEFAULT_CAPTIONER
from tools.embedder import DEFAULT_VISUAL_MODEL

API_KEY_ENV = "VIDAGENT_API_KEY"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    llm_url: LLMUrlOpt = None,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (0.0.0.0: every interface).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port.")] = 8000,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Where uploads are kept (default: VIDAGENT_HOME/web)."),
    ] = None,
    videos: Annotated[
        Path | None,
        typer.Option("--videos", help="A folder of videos to offer in the picker (read only)."),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar=API_KEY_ENV,
            help=f"Require this key on every API call (env {API_KEY_ENV}).",
            show_default=False,
        ),
    ] = None,
    max_upload_mb: Annotated[
        float, typer.Option("--max-upload-mb", min=0.001, help="Largest upload accepted (MB).")
    ] = 500.0,
    tool_choice: ToolChoiceOpt = "auto",
    max_rounds: MaxRoundsOpt = 4,
    tools: ToolsOpt = None,
    max_tokens: MaxTokensOpt = 1024,
    temperature: TemperatureOpt = 0.0,
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
) -> None:
    """Serve the web chat: pick or upload a video, watch it, see its timeline, ask about it.

    The page is at http://HOST:PORT/, the REST API under /api (documented at /docs). Videos are
    perceived when first opened (cached in the perception store); the chat needs a vLLM server
    started with --enable-auto-tool-choice --tool-call-parser hermes (--llm-url).
    """
    import uvicorn

    from agent.settings import load_settings
    from agent.web import ServeConfig, ServedBackend, create_app

    if not llm_url:
        raise ConfigError(NO_URL.replace("vidagent chat", "vidagent serve"))
    tool_names = tool_options(tool_choice, tools)
    if videos is not None and not videos.is_dir():
        raise ConfigError(f"--videos {videos}: not a directory")
    if bank is not None and not bank.is_dir():
        raise ConfigError(f"--bank {bank}: not a directory")
    if prompt is not None:
        from agent.prompting import load_prompt

        load_prompt(prompt)  # a broken prompt file is reported now, not at the first question
    api_key = (api_key or "").strip() or None
    config = ServeConfig(
        data_dir=(data_dir or load_settings().home / "web").resolve(),
        videos_dir=videos.resolve() if videos is not None else None,
        api_key=api_key,
        max_upload_mb=max_upload_mb,
        max_rounds=max_rounds,
        tool_choice=tool_choice,  # type: ignore[arg-type]
        max_tokens=max_tokens,
        k=k,
        max_timeline_chars=max_timeline_chars,
        prompt=prompt,
        tools=tool_names,
    )
    backend = ServedBackend(
        llm_url=list(llm_url),
        llm_model=llm_model,
        captioner=captioner,
        embedder=embedder,
        captioner_url=captioner_url,
        taxonomy=taxonomy,
        bank=bank,
        seconds=seconds,
        device=device,
        temperature=temperature,
    )
    console = Console(stderr=True)
    if not is_loopback(host) and api_key is None:
        console.print(
            f"[yellow]warning:[/yellow] listening on {host} without an API key: anyone who can "
            f"reach this port can upload videos and use the LLM (set --api-key or {API_KEY_ENV})",
            highlight=False,
        )
    app = create_app(config, backend=backend)
    shown = f"[{host}]" if ":" in host else host
    console.print(
        f"vidagent web chat on http://{shown}:{port}/ (API docs: /docs; uploads in "
        f"{config.data_dir})",
        highlight=False,
    )
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    uvicorn.run(app, host=host, port=port, log_level="warning")


__all__ = ["API_KEY_ENV", "serve"]
