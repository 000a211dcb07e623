"""``vidagent train actions``: train the verb/noun heads that ``perceive --action-head`` loads.

A thin shell over :func:`vidagent.train.actions.train_actions`: it checks the options into a
:class:`~vidagent.train.actions.TrainActionsConfig`, builds the segment embedder and opens the
perception store, draws the perception bar and then one bar of epochs (with the val loss and
top-1 accuracies) on stderr, and prints the Ego4D recognition metrics on val next to the chance
row. Mounted by :mod:`vidagent.cli.main` as ``vidagent train``; a user mistake (labels outside the
taxonomy, missing videos, an empty split) is one line through ``vidagent.cli.main.main``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import TaskID
from rich.table import Table

from vidagent.cli.options import DeviceOpt
from vidagent.tools.perceive_records import ProgressEvent
from vidagent.tools.visual_embedder import DEFAULT_VISUAL_MODEL
from vidagent.train.actions import TrainReport
from vidagent.train.fit import EpochReport

app = typer.Typer(
    help="Train what the anchors train: action heads on frozen segment embeddings.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

Opt = typer.Option


@app.command()
def actions(
    labels: Annotated[
        Path,
        Opt("--labels", metavar="FILE", help="Training labels: Ego4D LTA .json, .csv or .jsonl."),
    ],
    videos: Annotated[Path, Opt("--videos", metavar="DIR", help="Folder of the labelled videos.")],
    out: Annotated[
        Path, Opt("--out", "-o", metavar="FILE", help="Head file to write (.safetensors).")
    ],
    val: Annotated[
        Path | None,
        Opt("--val", metavar="FILE", help="Val labels (default: hold out --val-fraction)."),
    ] = None,
    taxonomy: Annotated[
        Path | None,
        Opt(
            "--taxonomy",
            metavar="FILE",
            help="Taxonomy JSON (needed for Ego4D files; default: the names in the labels).",
        ),
    ] = None,
    embedder: Annotated[
        str,
        Opt(
            "--embedder",
            metavar="MODEL",
            help="CLIP/SigLIP model whose segment embeddings the head reads (perceive's "
            "--action-model).",
        ),
    ] = DEFAULT_VISUAL_MODEL,
    hidden: Annotated[
        int, Opt("--hidden", min=0, metavar="UNITS", help="0: linear head; N: MLP of N units.")
    ] = 0,
    balanced: Annotated[
        bool, Opt("--balanced", help="Class-balanced loss (rare classes weigh more).")
    ] = False,
    epochs: Annotated[int, Opt("--epochs", min=1, metavar="N", help="Most epochs.")] = 200,
    patience: Annotated[
        int, Opt("--patience", min=1, metavar="N", help="Stop after N epochs without gain.")
    ] = 20,
    lr: Annotated[float, Opt("--lr", min=0.0, metavar="RATE", help="Learning rate.")] = 1e-2,
    weight_decay: Annotated[
        float, Opt("--weight-decay", min=0.0, metavar="W", help="Adam weight decay.")
    ] = 1e-4,
    head_batch: Annotated[
        int, Opt("--head-batch", min=1, metavar="N", help="Training samples per step.")
    ] = 256,
    val_fraction: Annotated[
        float, Opt("--val-fraction", metavar="F", help="Without --val: share of videos held out.")
    ] = 0.2,
    seed: Annotated[int, Opt("--seed", metavar="N", help="Seed of the split and the fit.")] = 0,
    seconds: Annotated[
        float,
        Opt(
            "--seconds",
            "-s",
            min=0.1,
            metavar="SECONDS",
            help="Fixed segment length in seconds (default 2).",
        ),
    ] = 2.0,
    frames_per_segment: Annotated[
        int, Opt("--frames-per-segment", min=1, metavar="N", help="Frames per segment.")
    ] = 4,
    frame_size: Annotated[
        int, Opt("--frame-size", min=0, metavar="PX", help="Decode short side (0: native).")
    ] = 448,
    cached_only: Annotated[
        bool, Opt("--cached-only", help="Use only embeddings already in the store.")
    ] = False,
    device: DeviceOpt = "auto",
    batch_size: Annotated[
        int | None, Opt("--batch-size", min=1, metavar="N", help="Images per forward pass.")
    ] = None,
) -> None:
    """Train verb and noun heads on frozen segment embeddings; write the head and its metrics.

    Videos are perceived first (segment embeddings, cached in the store) and every labelled
    action labels the segments it covers for at least half their length. Prints verb/noun top-1
    and top-5 and action top-1 on val; writes them to <head>.metrics.json beside the head.
    """
    from vidagent.api.config import validated
    from vidagent.api.perception import open_store
    from vidagent.cli.progress import stderr_console
    from vidagent.tools.video_files import quiet_native_stderr
    from vidagent.tools.visual_embedder import EmbedderParams, SegmentEmbedder
    from vidagent.train.actions import TrainActionsConfig, metrics_path, train_actions
    from vidagent.train.fit import HeadOptions

    run = {"batch_size": batch_size} if batch_size else {}
    params = validated(
        EmbedderParams, model=embedder, frames_per_segment=frames_per_segment, device=device, **run
    )
    head = validated(
        HeadOptions, hidden=hidden, epochs=epochs, patience=patience, lr=lr,
        weight_decay=weight_decay, batch_size=head_batch, balanced=balanced, seed=seed,
        device=device,
    )  # fmt: skip
    config = validated(
        TrainActionsConfig, labels=labels, val_labels=val, videos_dir=videos, out=out,
        taxonomy=taxonomy, val_fraction=val_fraction, seconds=seconds,
        frame_size=frame_size or None, cached_only=cached_only, head=head,
    )  # fmt: skip
    with (
        stderr_console() as console,
        quiet_native_stderr(),
        perception_bar(console) as on_progress,
        epochs_bar(console) as on_epoch,
    ):
        report = train_actions(
            config, embedder=SegmentEmbedder(params), store=open_store(),
            progress=on_progress, on_epoch=on_epoch,
        )  # fmt: skip
    stdout = Console()
    stdout.print(metrics_table(report))
    stdout.print(
        f"best epoch {report.best_epoch} of {report.epochs_run}; "
        f"{report.train.samples} train / {report.val.samples} val segments; "
        f"head {report.head}; metrics {metrics_path(Path(report.head))}",
        highlight=False,
        soft_wrap=True,
    )


@contextmanager
def perception_bar(console: Console) -> Iterator[Callable[[ProgressEvent], None]]:
    """One bar of the segments perceived (a cached run draws nothing)."""
    from vidagent.cli.progress import progress_bar

    bar = progress_bar(console=console)
    tasks: list[TaskID] = []
    videos = 0

    def on_progress(event: ProgressEvent) -> None:
        nonlocal videos
        if event.kind == "planned":
            if not tasks:
                bar.start()
                tasks.append(bar.add_task("perceiving", total=0))
            bar.update(tasks[0], total=(bar.tasks[0].total or 0) + event.count)
        elif event.kind == "segments" and tasks:
            bar.advance(tasks[0], event.count)
        elif event.kind == "video" and tasks:
            videos += 1
            bar.update(tasks[0], description=f"perceiving ({videos} videos done)")

    try:
        yield on_progress
    finally:
        if tasks:
            bar.stop()


@contextmanager
def epochs_bar(console: Console) -> Iterator[Callable[[EpochReport], None]]:
    """A bar of epochs, its description the latest val loss and top-1 accuracies."""
    from vidagent.cli.progress import progress_bar

    bar = progress_bar(console=console)
    tasks: list[TaskID] = []

    def on_epoch(r: EpochReport) -> None:
        if not tasks:
            bar.start()
            tasks.append(bar.add_task("epochs", total=r.epochs))
        text = (
            f"epoch {r.epoch}: val loss {r.val_loss:.3f}, top-1 verb {r.val_verb_top1:.2f} "
            f"noun {r.val_noun_top1:.2f} action {r.val_action_top1:.2f}"
        )
        bar.update(tasks[0], completed=r.epoch, description=text)

    try:
        yield on_epoch
    finally:
        if tasks:
            bar.stop()


def metrics_table(report: TrainReport) -> Table:
    """Val recognition metrics (percent) of the trained head and of the chance row."""
    table = Table(title=f"action recognition on val ({report.val.samples} segments)")
    names = ("verb_top1", "verb_top5", "noun_top1", "noun_top5", "action_top1")
    table.add_column("")
    for name in names:
        table.add_column(name.replace("_", " "), justify="right")
    rows = (("trained head", report.val_metrics), ("chance (majority)", report.chance))
    for row, metrics in rows:
        values = metrics.model_dump()
        table.add_row(row, *(f"{100 * values[n]:.1f}" for n in names))
    return table
