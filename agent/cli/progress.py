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
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from vidagent.tools.perceive_records import Progress as ProgressCallback
from vidagent.tools.perceive_records import ProgressEvent

__all__ = ["perception_progress", "progress_bar", "stderr_console", "steps_progress"]


def wall_rate(task: Task) -> float | None:
    """Steps per second since the bar's task started: the steps done since then (a task's
    ``base`` field: steps done before it, e.g. by an earlier run) over the wall time. Rich's own
    speed is per update, which two steps finishing 1 ms apart turn into thousands per second."""
    elapsed = task.elapsed
    if not elapsed:
        return None
    return max(0.0, task.completed - float(task.fields.get("base", 0))) / elapsed


class RateColumn(ProgressColumn):
    """``1.25/s`` (the wall-time rate, see :func:`wall_rate`)."""

    def render(self, task: Task) -> Text:
        rate = wall_rate(task)
        return Text("" if rate is None else f"{rate:.2f}/s", style="progress.data.speed")


class EtaColumn(ProgressColumn):
    """The time left at the wall-time rate."""

    def render(self, task: Task) -> Text:
        rate = wall_rate(task)
        if task.total is None or not rate:
            return Text("-:--:--", style="progress.remaining")
        left = int(max(0.0, task.total - task.completed) / rate)
        return Text(
            f"{left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}", style="progress.remaining"
        )


def progress_bar(transient: bool = True, console: Console | None = None) -> Progress:
    """The progress bar every long command shows (on stderr unless ``console`` says otherwise)."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        RateColumn(),
        TimeElapsedColumn(),
        EtaColumn(),
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
) -> Iterator[Callable[..., None]]:
    """Yields a ``(done, total, status=None)`` callback drawing one bar named ``description``
    (``description: status`` while a status is given). The steps of the first call count as
    done before: the rate is of the steps after it."""
    lazy = _LazyBar(progress_bar(console=console))
    tasks: list[TaskID] = []

    def on_steps(done: int, total: int, status: str | None = None) -> None:
        bar = lazy.start()
        if not tasks:
            tasks.append(bar.add_task(description, total=total, completed=done, base=done))
        text = f"{description}: {status}" if status else description
        bar.update(tasks[0], completed=done, total=total, description=text)

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
