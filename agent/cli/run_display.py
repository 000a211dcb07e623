"""What a long batch command shows besides its results: the progress bar's status while it waits
(the LLM's requests in flight and its failed tries), and the command line that resumes it.

- :class:`RunStatus` turns the runner's ``on_wait`` heartbeat and the LLM backend's counters
  (``backend.stats()``: requests outstanding and tries failed per server) into the bar's status,
  e.g. ``waiting for the LLM: 4 requests, 12 s; 3 tries failed, retrying (--max-retries 3)``,
  so a stalled or failing server shows on screen instead of as silence.
- :func:`command_line` rebuilds the command from the parsed options (what differs from the
  defaults), for the ``interrupted: ... resume with: ...`` line.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from typing import Protocol

import typer

__all__ = ["RunStatus", "command_line"]


class ReplicaCounters(Protocol):
    """What ``OpenAIBackend.stats()`` gives per server."""

    outstanding: int
    failed: int


class RunStatus:
    """The status text of a run's progress bar, from the heartbeat and the LLM's counters."""

    def __init__(self, backend: object, max_retries: int) -> None:
        stats = getattr(backend, "stats", None)
        self._stats: Callable[[], Sequence[ReplicaCounters]] | None = (
            stats if callable(stats) else None
        )
        self.max_retries = max_retries
        self._failed_before = self._failed()

    def _failed(self) -> int:
        return sum(r.failed for r in self._stats()) if self._stats is not None else 0

    def retries(self) -> str | None:
        """``3 tries failed, retrying (--max-retries 3)`` once any try of this run failed."""
        failed = self._failed() - self._failed_before
        if failed <= 0:
            return None
        plural = "y" if failed == 1 else "ies"
        return f"{failed} LLM tr{plural} failed, retrying (--max-retries {self.max_retries})"

    def waiting(self, in_flight: int, idle_s: float) -> str:
        """The status while no result has come for ``idle_s`` seconds."""
        outstanding = sum(r.outstanding for r in self._stats()) if self._stats else 0
        if outstanding:
            plural = "s" if outstanding > 1 else ""
            text = f"waiting for the LLM: {outstanding} request{plural}, {idle_s:.0f} s"
        else:
            plural = "s" if in_flight > 1 else ""
            text = f"waiting: {in_flight} sample{plural} in flight, {idle_s:.0f} s"
        retries = self.retries()
        return f"{text}; {retries}" if retries else text


def command_line(ctx: typer.Context, prefix: str) -> str:
    """``prefix`` and the parameters of ``ctx`` that differ from their defaults, as a shell line
    (long flags; ``--no-x`` for a switched-off ``--x/--no-x``; a list option repeated)."""
    parts = shlex.split(prefix)
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if param.param_type_name == "argument":
            parts += [str(v) for v in (value if isinstance(value, list | tuple) else [value])]
            continue
        if param.param_type_name != "option" or value is None or value == param.default:
            continue
        opts: list[str] = list(getattr(param, "opts", []))
        long = next((o for o in opts if o.startswith("--")), opts[0])
        if getattr(param, "is_flag", False):
            secondary: list[str] = list(getattr(param, "secondary_opts", []))
            if value:
                parts.append(long)
            elif secondary:
                parts.append(secondary[0])
            continue
        for one in value if isinstance(value, list | tuple) else [value]:
            parts += [long, str(one)]
    return shlex.join(parts)
