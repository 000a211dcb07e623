"""``vidagent demo``: ask, anticipate and localize end to end on a generated video, offline.

A thin shell over :func:`vidagent.api.demo.run_demo`: it prints each step and result as the demo
reports them. The files go to ``$VIDAGENT_HOME/demo`` unless ``--out`` names a folder.
``--train`` runs :func:`vidagent.api.train_demo.run_train_demo` instead (the proof that training
learns, on the synthetic world) and prints its table; its files go to ``$VIDAGENT_HOME/demo-train``.
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
    train: Annotated[
        bool,
        typer.Option(
            "--train",
            help="Train instead: an action head and the tiny LLM on a synthetic world, then "
            "score Ego4D LTA before and after (a few minutes on CPU).",
        ),
    ] = False,
) -> None:
    """Run ask, anticipate and localize end to end on a generated video, offline.

    Builds tiny random-weight models in the vidagent home (reused by later runs): it checks the
    install, not the quality of answers. With --train it shows that training learns: on a
    synthetic world with a known grammar, a trained action head and a fine-tuned tiny LLM beat
    the untrained model and a repeat-the-past baseline on Ego4D LTA's edit distance.
    """
    if train:
        train_demo(out_dir)
        return
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
            print_step(event, console)
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


def train_demo(out_dir: Path | None) -> None:
    """``demo --train``: each step as it ends, then the ED@Z table."""
    from rich.table import Table

    from vidagent.api.train_demo import run_train_demo
    from vidagent.tools.video_files import quiet_native_stderr

    console = Console()
    console.rule("[bold yellow]vidagent demo --train: learning a synthetic world[/]")
    console.print(
        "Tiny random-weight CLIP and Llama, trained here on a generated world whose action "
        "grammar is known: an action head on the clips' segments, then the LLM on Ego4D LTA "
        "windows. Offline, CPU, a few minutes.",
        highlight=False,
    )

    _quiet_transformers()
    with quiet_native_stderr(), console.status("training and evaluating..."):
        results = run_train_demo(out_dir, lambda event: print_step(event, console))
    settings = results.settings
    table = Table(
        title=f"Ego4D LTA on {results.rows[0].windows} val windows of the world: edit distance "
        f"ED@{settings.z}, best of {settings.k} candidates (lower is better)"
    )
    for column in ("forecaster", "verb", "noun", "action", "valid output"):
        table.add_column(column, justify="left" if column == "forecaster" else "right")
    for row in results.rows:
        valid = "-" if row.valid_rate is None else f"{row.valid_rate:.0%}"
        table.add_row(
            row.name, f"{row.ed_verb:.3f}", f"{row.ed_noun:.3f}", f"{row.ed_action:.3f}", valid
        )
    console.print(table)
    console.print(
        f"[green]done[/] in {results.seconds:.0f}s; head, tuned model, timelines and eval run "
        f"folders (results.jsonl, report.md, outputs.json) in {results.out_dir}/",
        highlight=False,
    )


def print_step(event: DemoEvent, console: Console) -> None:
    """``2/5 text`` with the step number in bold."""
    number, _, text = event.text.partition(" ")
    console.print(f"[bold]{number}[/] {text}", highlight=False)


def _quiet_transformers() -> None:
    """No weight-loading / shard-writing bars of transformers between the demo's lines."""
    try:
        from transformers.utils import logging
    except ImportError:
        return
    logging.disable_progress_bar()
    logging.set_verbosity_error()
