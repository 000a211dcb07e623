"""The terminal loop of ``vidagent chat``: read a line, run a command or a turn, stream the answer.

Commands: ``/help``, ``/timeline``, ``/reset``, ``/quit``. Ctrl-C while an answer streams stops that
answer (the turn is dropped from the history) and the session goes on; Ctrl-C twice in a row at the
prompt, or Ctrl-D, ends it. Input is read by a function passed in (``input`` with readline history,
kept in ``$VIDAGENT_HOME/chat_history``, in the CLI, a scripted list in tests).
"""

from __future__ import annotations

import atexit
import contextlib
import json
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from vidagent.chat.agent import ChatAgent, TextChunk, ToolCallEvent, ToolResultEvent

PROMPT = "you> "
HELP = """\
Ask anything about the video; the agent looks things up with its tools and cites <seg_N> tokens.
  /timeline  show the perceived timeline
  /reset     forget the conversation
  /help      this text
  /quit      leave (also Ctrl-D, or Ctrl-C twice at the prompt)
Ctrl-C while an answer is streaming stops that answer."""

ReadLine = Callable[[str], str]


HISTORY_LENGTH = 1000


def enable_line_history(path: Path | None = None) -> Path | None:
    """Arrow-key editing and history for ``input()``, kept across sessions in ``path``.

    ``path`` defaults to ``chat_history`` in the vidagent home. The earlier sessions' lines are
    loaded now and this session's are written back at exit (the last :data:`HISTORY_LENGTH`).
    Returns the history file, or None where readline does not exist (Windows).
    """
    try:
        import readline
    except ImportError:
        return None
    if path is None:
        from vidagent.core.settings import load_settings

        path = load_settings().home / "chat_history"
    with contextlib.suppress(OSError):
        readline.read_history_file(path)
    readline.set_history_length(HISTORY_LENGTH)
    atexit.register(save_line_history, path)
    return path


def save_line_history(path: Path) -> None:
    """Write readline's history to ``path``; a failure to write only loses the history."""
    import readline

    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        readline.write_history_file(path)


def _short(text: str, limit: int = 300) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def answer_turn(agent: ChatAgent, question: str, console: Console) -> None:
    """Stream one turn to the console: tool calls dimmed, the answer as it arrives."""
    started = False
    for event in agent.stream(question):
        if isinstance(event, TextChunk):
            console.print(event.text, end="", highlight=False, markup=False, soft_wrap=True)
            started = True
        elif isinstance(event, ToolCallEvent):
            if started:
                console.print()
                started = False
            args = (
                event.arguments if isinstance(event.arguments, str) else json.dumps(event.arguments)
            )
            console.print(f"[dim]> {event.name}({_short(args, 120)})[/dim]", highlight=False)
        elif isinstance(event, ToolResultEvent):
            style = "red" if event.error else "dim"
            console.print(f"[{style}]{_short(event.content)}[/{style}]", highlight=False)
    console.print()


def run_repl(
    agent: ChatAgent, console: Console, read_line: ReadLine = input, *, timeline: str = ""
) -> int:
    """Run the chat loop until /quit, Ctrl-D or a second Ctrl-C at the prompt; returns 0."""
    console.print("Chat about the video. /help for commands.", highlight=False)
    interrupted = False
    while True:
        try:
            line = read_line(PROMPT).strip()
        except EOFError:
            console.print()
            return 0
        except KeyboardInterrupt:
            if interrupted:
                console.print()
                return 0
            interrupted = True
            console.print("\n(press Ctrl-C again or type /quit to leave)", highlight=False)
            continue
        interrupted = False
        if not line:
            continue
        command = line.lower()
        if command in ("/quit", "/exit"):
            return 0
        if command == "/help":
            console.print(HELP, highlight=False, markup=False)
        elif command == "/timeline":
            console.print(timeline, highlight=False, markup=False)
        elif command == "/reset":
            agent.reset()
            console.print("(conversation cleared)", highlight=False)
        elif command.startswith("/"):
            console.print(f"unknown command {line!r}; /help lists them", highlight=False)
        else:
            try:
                answer_turn(agent, line, console)
            except KeyboardInterrupt:
                console.print("\n[yellow](stopped)[/yellow]", highlight=False)
            except Exception as exc:  # a failed turn (server error, too long a prompt) is dropped
                console.print(
                    f"\n[red]error:[/red] {_short(str(exc) or type(exc).__name__)} "
                    "(the question was not added to the conversation)",
                    highlight=False,
                )
