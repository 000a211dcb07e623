"""``vidagent serve``: the web chat (video picker and upload, player, timeline, streaming chat).

A thin shell over :func:`vidagent.web.create_app`: it builds the
:class:`~vidagent.web.ServedBackend` from the options ``vidagent chat`` shares
(:mod:`vidagent.cli.options`) and runs uvicorn. It binds to 127.0.0.1 unless told otherwise and
warns when it listens on another address without an API key.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from vidagent.api.config import LLMSettings, PerceptionConfig
from vidagent.cli.chat import NO_URL
from vidagent.cli.options import (
    CHAT,
    EXAMPLES,
    LLM,
    PERCEPTION,
    ChatOptions,
    Examples,
    with_options,
)
from vidagent.core.errors import ConfigError

API_KEY_ENV = "VIDAGENT_API_KEY"

__all__ = ["API_KEY_ENV", "is_loopback", "serve"]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@with_options(LLM, EXAMPLES, PERCEPTION, CHAT)
def serve(
    *,
    host: Annotated[
        str,
        typer.Option(
            "--host", help="Address to listen on (0.0.0.0: every interface).", metavar="HOST"
        ),
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="TCP port.", metavar="PORT")
    ] = 8000,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Where uploads are kept (default: VIDAGENT_HOME/web).",
            metavar="DIR",
        ),
    ] = None,
    videos: Annotated[
        Path | None,
        typer.Option(
            "--videos", help="A folder of videos to offer in the picker (read only).", metavar="DIR"
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar=API_KEY_ENV,
            help=f"Require this key on every API call (env {API_KEY_ENV}).",
            metavar="KEY",
            show_default=False,
        ),
    ] = None,
    max_upload_mb: Annotated[
        float,
        typer.Option(
            "--max-upload-mb", min=0.001, help="Largest upload accepted (MB).", metavar="MB"
        ),
    ] = 500.0,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            help="Also accept requests naming this host (a reverse proxy's name; '*': any). "
            "By default only localhost, 127.0.0.1, [::1] and --host are accepted, against DNS "
            "rebinding. Repeatable.",
            metavar="NAME",
        ),
    ] = None,
    max_sessions: Annotated[
        int,
        typer.Option(
            "--max-sessions",
            min=1,
            help="Chat sessions kept at once; a new one replaces the least recently used idle one.",
            metavar="N",
        ),
    ] = 64,
    session_idle_s: Annotated[
        float,
        typer.Option(
            "--session-idle-s",
            min=1,
            help="Forget a chat session unused this long (seconds).",
            metavar="S",
        ),
    ] = 3600.0,
    llm: LLMSettings,
    examples: Examples,
    perception: PerceptionConfig,
    chat_options: ChatOptions,
) -> None:
    """Serve the web chat: pick or upload a video, watch it, see its timeline, ask about it.

    The page is at http://HOST:PORT/, the REST API under /api (documented at /docs). Videos are
    perceived when first opened (cached in the perception store); the chat needs a vLLM server
    started with --enable-auto-tool-choice --tool-call-parser hermes (--llm-url).
    """
    import uvicorn

    from vidagent.api.config import validated
    from vidagent.api.deps import llm_problem
    from vidagent.api.tasks import load_template
    from vidagent.core.settings import load_settings
    from vidagent.web import ServeConfig, ServedBackend, create_app

    if not llm.urls:
        raise ConfigError(NO_URL.replace("vidagent chat", "vidagent serve"))
    if videos is not None and not videos.is_dir():
        raise ConfigError(f"--videos {videos}: not a directory")
    settings = chat_options.settings(examples)
    load_template(
        settings.prompt
    )  # a broken prompt file is reported now, not at the first question
    api_key = (api_key or "").strip() or None
    config = validated(
        ServeConfig,
        **settings.model_dump(),
        data_dir=(data_dir or load_settings().home / "web").resolve(),
        videos_dir=videos.resolve() if videos is not None else None,
        api_key=api_key,
        max_upload_mb=max_upload_mb,
        host=host,
        allowed_hosts=tuple(allowed_host or ()),
        max_sessions=max_sessions,
        session_idle_s=session_idle_s,
    )
    backend = ServedBackend(
        llm=llm, perception=perception, bank=examples.bank, temperature=chat_options.temperature
    )
    console = Console(stderr=True)
    if not is_loopback(host) and api_key is None:
        console.print(
            f"[yellow]warning:[/yellow] listening on {host} without an API key: anyone who can "
            f"reach this port can upload videos and use the LLM (set --api-key or {API_KEY_ENV})",
            highlight=False,
        )
    problem = llm_problem(llm)
    if problem is not None:
        console.print(
            f"[yellow]warning:[/yellow] {problem}; the page starts anyway and answers with this "
            "error until the LLM server is up",
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
    # An answer held by a silent model server would otherwise keep uvicorn from stopping.
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
