"""The one progress bar of the CLI, and the callbacks that drive it from the library's events.

The library never draws: perception reports :class:`~vidagent.tools.perceive.ProgressEvent`\\ s
and shot detection ``(done, total)`` frames to callbacks. :func:`perception_progress` and
:func:`steps_progress` turn those into :func:`progress_bar`, drawn on stderr so stdout stays
parseable, and only once the first event arrives (a cached run shows no empty bar).
:func:`stderr_console` is a console on the real stderr that keeps working while the library sends
FFmpeg's noise on file descriptor 2 to /dev/null; the tools' log warnings go to it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from vidagent.tools.perceive_records import Progress as ProgressCallback
from vidagent.tools.perceive_records import ProgressEvent

__all__ = ["perception_progress", "progress_bar", "stderr_console", "steps_progress"]


def progress_bar(transient: bool = True, console: Console | None = None) -> Progress:
    """The progress bar every long command shows (on stderr unless ``console`` says otherwise)."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
        transient=transient,
    )


class _LazyBar:
    """A bar that starts drawing at its first update and stops at the end of the block."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.started = False

    def start(self) -> Progress:
        if not self.started:
            self.bar.start()
            self.started = True
        return self.bar

    def stop(self) -> None:
        if self.started:
            self.bar.stop()


@contextlib.contextmanager
def perception_progress(count: int, console: Console | None = None) -> Iterator[ProgressCallback]:
    """Yields the perception pipeline's ``on_progress`` callback, drawing ``count`` videos and
    their segments on ``console`` (default stderr)."""
    lazy = _LazyBar(progress_bar(console=console))
    tasks: dict[str, TaskID] = {}

    def on_progress(event: ProgressEvent) -> None:
        bar = lazy.start()
        if not tasks:
            tasks["videos"] = bar.add_task("videos", total=count)
            tasks["segments"] = bar.add_task("segments", total=0)
        if event.kind == "planned":
            total = bar.tasks[tasks["segments"]].total or 0
            bar.update(tasks["segments"], total=total + event.count)
        elif event.kind == "segments":
            bar.advance(tasks["segments"], event.count)
        else:
            bar.advance(tasks["videos"])
            bar.update(tasks["videos"], description=f"videos ({Path(event.path).name})")

    try:
        yield on_progress
    finally:
        lazy.stop()


@contextlib.contextmanager
def steps_progress(
    description: str, console: Console | None = None
) -> Iterator[Callable[[int, int], None]]:
    """Yields a ``(done, total)`` callback drawing one bar named ``description``."""
    lazy = _LazyBar(progress_bar(console=console))
    tasks: list[TaskID] = []

    def on_steps(done: int, total: int) -> None:
        bar = lazy.start()
        if not tasks:
            tasks.append(bar.add_task(description, total=total))
        bar.update(tasks[0], completed=done, total=total)

    try:
        yield on_steps
    finally:
        lazy.stop()


@contextlib.contextmanager
def stderr_console() -> Iterator[Console]:
    """A console on (a duplicate of) the real stderr, which keeps drawing while the library sends
    FFmpeg/decord noise on fd 2 to /dev/null; the tools' log warnings (OOM halving) go to it."""
    sys.stderr.flush()
    with os.fdopen(os.dup(2), "w", encoding="utf-8", errors="replace") as tty:
        console = Console(file=tty)
        handler = RichHandler(console=console, show_time=False, show_path=False)
        handler.setLevel(logging.WARNING)
        logger = logging.getLogger("vidagent.tools")
        logger.addHandler(handler)
        try:
            yield console
        finally:
            logger.removeHandler(handler)
