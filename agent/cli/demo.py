"""``vidagent demo``: ask, anticipate and localize end to end on a generated video, offline.

A thin shell over :func:`vidagent.api.demo.run_demo`: it prints each step and result as the demo
reports them. The files go to ``$VIDAGENT_HOME/demo`` unless ``--out`` names a folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from vidagent.api.demo import DemoEvent
from vidagent.cli.tasks import print_answer, print_anticipation, print_localization
from vidagent.tasks.answer import AnswerResult
from vidagent.tasks.anticipate import AnticipationResult
from vidagent.tasks.localize import LocalizationResult

__all__ = ["demo"]


def demo(
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Where to write the demo video and run records (default: VIDAGENT_HOME/demo).",
            metavar="DIR",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run ask, anticipate and localize end to end on a generated video, offline.

    Builds tiny random-weight models in the vidagent home (reused by later runs): it checks the
    install, not the quality of answers.
    """
    from vidagent.api.demo import run_demo

    console = Console()
    console.rule("[bold yellow]vidagent demo: tiny RANDOM-WEIGHT models[/]")
    console.print(
        "The models below have random weights: answers are arbitrary. The demo checks that "
        "perception, retrieval, prompting and guided decoding work on this machine, offline.",
        highlight=False,
    )

    def show(event: DemoEvent) -> None:
        if event.kind == "step":
            number, _, text = event.text.partition(" ")
            console.print(f"[bold]{number}[/] {text}", highlight=False)
        elif event.kind == "task":
            console.rule(event.text)
        elif isinstance(event.result, AnswerResult):
            print_answer(event.result, console)
        elif isinstance(event.result, AnticipationResult):
            print_anticipation(event.result, console)
        elif isinstance(event.result, LocalizationResult):
            print_localization(event.result, console)

    results = run_demo(out_dir, show)
    console.rule()
    console.print(
        f"[green]done[/] in {results.seconds:.1f}s: run records in {results.out_dir}/ "
        "(ask.json, anticipate.json, localize.json). Random weights: this checked the install, "
        "not quality.",
        highlight=False,
    )
