"""The ``vidagent`` command: assembles the commands of the other modules and handles errors.

A thin shell over the Python API (:mod:`vidagent.api`). User mistakes (bad file, bad option,
unreachable server) print one line and exit with status 2; nothing prints a traceback unless
``VIDAGENT_DEBUG=1`` is set.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

import click
import typer
from rich.console import Console

from vidagent.core.errors import VidagentError

app = typer.Typer(
    name="vidagent",
    help=(
        "vidagent: an LLM-driven video understanding agent. It turns videos into timelines of "
        "segments (<seg_N> tokens with times, captions and action labels) and asks an LLM served "
        "by vLLM to answer questions, anticipate actions and localize moments."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
err = Console(stderr=True)


def _register_subcommands() -> None:
    """Mount the commands and sub-apps that live in other modules (once)."""
    if getattr(app, "_vidagent_registered", False):
        return
    from vidagent.cli.chat import chat
    from vidagent.cli.demo import demo
    from vidagent.cli.eval import app as eval_app
    from vidagent.cli.perceive import perceive
    from vidagent.cli.serve import serve
    from vidagent.cli.tasks import anticipate, ask, localize
    from vidagent.cli.video import demo_video, frames, info, segments

    app._vidagent_registered = True  # type: ignore[attr-defined]
    commands: list[tuple[str, Callable[..., Any]]] = [
        ("info", info),
        ("segments", segments),
        ("frames", frames),
        ("demo-video", demo_video),
        ("perceive", perceive),
        ("ask", ask),
        ("anticipate", anticipate),
        ("localize", localize),
        ("demo", demo),
        ("chat", chat),
        ("serve", serve),
    ]
    for name, command in commands:
        app.command(name)(command)
    with contextlib.suppress(ImportError):
        from vidagent.cli.llm import app as llm_app

        app.add_typer(llm_app, name="llm", help="Check and use the LLM server (vLLM).")
    with contextlib.suppress(ImportError):
        from vidagent.cli.index import app as index_app

        app.add_typer(index_app, name="index", help="Build, search and inspect example banks.")
    app.add_typer(eval_app, name="eval", help="Score prediction files and run benchmarks.")
    from vidagent.cli.train import app as train_app
    from vidagent.cli.train_llm import llm as train_llm

    train_app.command("llm")(train_llm)

    app.add_typer(train_app, name="train", help="Train action heads and LoRA adapters of the LLM.")


def build_command() -> Any:
    """The whole ``vidagent`` command tree (typer's click command), with readable help."""
    from vidagent.cli.help import readable_help

    _register_subcommands()
    return readable_help(typer.main.get_command(app))


def _click_errors() -> tuple[type[Exception], ...]:
    """click's exception base, and that of the click copy typer bundles (it raises those)."""
    bundled = getattr(getattr(typer, "_click", None), "ClickException", None)
    return (click.ClickException, bundled) if bundled is not None else (click.ClickException,)


CLICK_ERRORS = _click_errors()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: one line and a non-zero exit for every user error."""
    if not os.environ.get("VIDAGENT_DEBUG"):
        # Library chatter (tqdm bars while saving tiny models, torchvision fallback notices) reads
        # like trouble on a terminal; our own progress bars and errors say what matters.
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TQDM_DISABLE", "1")
    command = build_command()
    try:
        code = command(args=argv, prog_name="vidagent", standalone_mode=False)
        raise SystemExit(code if isinstance(code, int) else 0)
    except VidagentError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise SystemExit(2) from None
    except CLICK_ERRORS as exc:  # a bad or missing option: one line, not click's box
        ctx = getattr(exc, "ctx", None)
        hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
        message = f"{exc.format_message()}{hint}"  # type: ignore[attr-defined]
        err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
        raise SystemExit(2) from None
    except (KeyboardInterrupt, click.Abort, typer.Abort):
        err.print("interrupted")
        raise SystemExit(130) from None
    except Exception as exc:
        if os.environ.get("VIDAGENT_DEBUG"):
            raise
        err.print(
            f"[red]internal error:[/red] {type(exc).__name__}: {exc} "
            "(set VIDAGENT_DEBUG=1 for the traceback and please report it)",
            highlight=False,
            soft_wrap=True,
        )
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
