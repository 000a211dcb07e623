"""Range checks of numeric options as one-line errors: ``error: --z must be >= 1 (got 0)``.

Typer's own ``min=``/``max=`` fail inside click's parser with a multi-line usage panel. These are
option callbacks instead: they raise :class:`~vidagent.core.errors.ConfigError` naming the flag as
the user typed it, which the ``vidagent`` entry point prints as one line (exit status 2). Use as
``typer.Option("--z", callback=at_least(1), ...)``; the help text says the range.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import typer

from vidagent.core.errors import ConfigError

__all__ = ["above", "at_least", "between", "flag_of"]

N = TypeVar("N", int, float)
Check = Callable[[typer.CallbackParam, N | None], N | None]


def flag_of(param: typer.CallbackParam) -> str:
    """The option's long flag (``--candidates`` rather than ``-K``)."""
    opts = list(getattr(param, "opts", [])) or [str(param.name)]
    return next((o for o in opts if o.startswith("--")), opts[0])


def _check(ok: Callable[[float], bool], rule: str) -> Check[N]:
    def check(param: typer.CallbackParam, value: N | None) -> N | None:
        if value is not None and not ok(value):
            raise ConfigError(f"{flag_of(param)} must be {rule} (got {value:g})")
        return value

    return check


def at_least(minimum: float) -> Check[N]:
    """The value is ``>= minimum``."""
    return _check(lambda v: v >= minimum, f">= {minimum:g}")


def above(minimum: float) -> Check[N]:
    """The value is ``> minimum``."""
    return _check(lambda v: v > minimum, f"> {minimum:g}")


def between(low: float, high: float) -> Check[N]:
    """The value lies in ``[low, high]``."""
    return _check(lambda v: low <= v <= high, f"between {low:g} and {high:g}")
