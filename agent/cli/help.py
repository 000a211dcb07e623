"""Readable help: every option's value shown as a word (``FILE``, ``N``, ``TEXT``), never as a
Python type (``<bool>``, ``<list[Path]>``).

The shared options declare their metavars (:mod:`vidagent.cli.options`); :func:`readable_help`
gives the rest (flags, the ``--help`` option, commands declared elsewhere) one from their type,
walking the whole command tree once when the app is assembled.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import typer
import typer.core

__all__ = ["metavar_of", "readable_help", "walk_commands"]

_WORDS = {
    "str": "TEXT",
    "text": "TEXT",
    "int": "N",
    "integer": "N",
    "float": "FLOAT",
    "path": "PATH",
    "file": "FILE",
    "directory": "DIR",
    "bool": "",
}


Command = Any
"""A command of typer's (vendored) click: ``params``, and ``commands`` for a group."""


def walk_commands(
    command: Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Command]]:
    """``(names, command)`` for ``command`` and every command below it."""
    yield path, command
    for name, sub in (getattr(command, "commands", None) or {}).items():
        yield from walk_commands(sub, (*path, name))


def metavar_of(param: Any, ctx: typer.Context) -> str:
    """What the help shows for ``param``'s value ("" for a flag)."""
    if param.metavar is not None:
        return str(param.metavar)
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""
    shown = getattr(param, "display_type", None)
    label = str(shown(ctx) if callable(shown) else param.type.name)
    label = label.strip("<>").removeprefix("list[").removesuffix("]")
    label = re.sub(r" range$", "", label)
    return _WORDS.get(label.lower(), label.upper())


def _argument_type(self: typer.core.TyperArgument, ctx: typer.Context) -> str | None:
    return None


def readable_help(command: Command) -> Command:
    """Give every parameter of ``command`` and its sub-commands a readable metavar (in place)."""
    for _, cmd in walk_commands(command):
        ctx = typer.Context(cmd)
        params = list(cmd.params)
        help_option = cmd.get_help_option(ctx)
        if help_option is not None:
            params.append(help_option)
        for param in params:
            word = metavar_of(param, ctx)
            if isinstance(param, typer.core.TyperArgument):
                name = word if param.nargs == 1 else f"{word}..."
                param.metavar = param.metavar or name
                # the type column of an argument repeats its metavar: shown once, as the name
                param.display_type_rich = _argument_type.__get__(param)  # type: ignore[method-assign]
            else:
                param.metavar = word
    return command
