"""``vidagent perceive``: run the perception tools over videos and write one timeline JSON each.

A thin shell over :func:`vidagent.api.perception.perceive_many` (in this process, or with
``--engine ray`` on a Ray cluster whose actors build the same tools): it turns the options into a
:class:`~vidagent.api.PerceptionConfig` (the shared perception options of
:mod:`vidagent.cli.options` plus the ones below), shows a progress bar on stderr, prints a summary
table and exits with status 1 when any video failed (the others are still written). Bad options
are one :class:`~vidagent.core.errors.ConfigError` line (status 2 through
``vidagent.cli.main.main``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from vidagent.api.config import PerceptionConfig
from vidagent.cli.options import PERCEPTION, MaxShotSecondsOpt, Opt, ShotsOpt, with_options
from vidagent.cli.progress import perception_progress, stderr_console
from vidagent.core.errors import ConfigError
from vidagent.tools.perceive_records import PerceiveSummary

__all__ = ["perceive"]

PERCEIVE = PERCEPTION.extend(
    Opt(
        "caption_prompt",
        Annotated[
            str | None,
            typer.Option(
                "--caption-prompt", help="Instruction (chat VLMs) or prefix.", metavar="TEXT"
            ),
        ],
        None,
    ),
    Opt(
        "caption_frames",
        Annotated[
            int,
            typer.Option(
                "--caption-frames", help="Frames per segment for captions.", min=1, metavar="N"
            ),
        ],
        1,
    ),
    Opt(
        "caption_max_tokens",
        Annotated[
            int,
            typer.Option(
                "--caption-max-tokens", help="Longest caption, in tokens.", min=1, metavar="N"
            ),
        ],
        40,
    ),
    Opt(
        "action_model",
        Annotated[
            str | None,
            typer.Option(
                "--action-model",
                help="CLIP/SigLIP model for zero-shot actions (default: the --embedder model).",
                metavar="MODEL",
            ),
        ],
        None,
    ),
    Opt(
        "action_head",
        Annotated[
            Path | None,
            typer.Option(
                "--action-head", help="Trained linear head (.safetensors).", metavar="FILE"
            ),
        ],
        None,
    ),
    Opt(
        "top_k",
        Annotated[
            int, typer.Option("--top-k", help="Action labels per segment.", min=1, metavar="N")
        ],
        5,
    ),
    Opt(
        "frames_per_segment",
        Annotated[
            int,
            typer.Option(
                "--frames-per-segment",
                min=1,
                help="Frames per segment (actions, embeddings).",
                metavar="N",
            ),
        ],
        4,
    ),
    Opt(
        "batch_size",
        Annotated[
            int | None,
            typer.Option("--batch-size", help="Images per forward pass.", min=1, metavar="N"),
        ],
        None,
    ),
    Opt(
        "dtype",
        Annotated[
            str,
            typer.Option(
                "--dtype",
                help="auto (bf16/fp16 on GPU, fp32 on CPU), float32, float16, bfloat16.",
                metavar="DTYPE",
            ),
        ],
        "auto",
    ),
    Opt(
        "frame_size",
        Annotated[
            int,
            typer.Option(
                "--frame-size",
                min=0,
                help="Decode short side in pixels (0: native).",
                metavar="PX",
            ),
        ],
        448,
    ),
    Opt("shots", ShotsOpt, False),
    Opt("max_shot_seconds", MaxShotSecondsOpt, 10.0),
    *(
        Opt(
            f"no_{name}",
            Annotated[bool, typer.Option(f"--no-{name}", help=f"Skip {what}.", metavar="")],
            False,
        )
        for name, what in (
            ("captions", "captioning"),
            ("actions", "action labels"),
            ("embeddings", "segment embeddings"),
        )
    ),
)
"""The shared perception options plus those only ``perceive`` offers."""


@with_options(PERCEIVE)
def perceive(
    videos: Annotated[
        list[Path] | None,
        typer.Argument(help="Video files.", metavar="VIDEO", show_default=False),
    ] = None,
    *,
    videos_dir: Annotated[
        Path | None,
        typer.Option("--videos-dir", help="Also every video under this folder.", metavar="DIR"),
    ] = None,
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Folder for the timeline JSON files.", metavar="DIR"),
    ] = Path("timelines"),
    engine: Annotated[
        str,
        typer.Option(
            "--engine", help="local (this process) or ray (Ray Data actor pool).", metavar="NAME"
        ),
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            help="--engine ray: cluster (auto, HOST:PORT, ray://HOST:10001).",
            metavar="ADDRESS",
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option("--workers", help="--engine ray: model-holding actors.", min=1, metavar="N"),
    ] = 1,
    videos_per_task: Annotated[
        int,
        typer.Option(
            "--videos-per-task", help="--engine ray: videos per actor call.", min=1, metavar="N"
        ),
    ] = 4,
    gpus_per_worker: Annotated[
        float | None,
        typer.Option(
            "--gpus-per-worker", min=0, help="--engine ray: GPUs per actor (auto).", metavar="N"
        ),
    ] = None,
    perception: PerceptionConfig,
) -> None:
    """Caption, label and embed every segment of videos; write one timeline JSON per video.

    Results are cached by the videos' content: re-running skips what is already done.
    """
    from vidagent.api.perception import perceive_many
    from vidagent.tools.video_files import find_videos

    if engine not in ("local", "ray"):
        raise ConfigError(f"--engine {engine!r}: choose local or ray")
    if engine == "local" and address is not None:
        raise ConfigError("--address needs --engine ray")
    paths = find_videos(videos or [], videos_dir)
    ray_plan = None
    if engine == "ray":
        from vidagent.tools.perceive_ray import RayPlan

        ray_plan = RayPlan(workers, videos_per_task, gpus_per_worker)
    with stderr_console() as err, perception_progress(len(paths), err) as on_progress:
        summary = perceive_many(
            paths, perception, out_dir=out, on_progress=on_progress, ray=ray_plan, address=address
        )
    stdout = Console()
    stdout.print(_summary_table(summary))
    for r in summary.failed:
        stdout.print(f"[red]failed[/red] {r.path}: {r.error}", highlight=False, soft_wrap=True)
    failed = summary.count("failed")
    stdout.print(
        f"{summary.count('ok')} computed, {summary.count('cached')} cached, {failed} failed "
        f"in {summary.seconds:.1f}s; timelines in {out}/",
        highlight=False,
        soft_wrap=True,
    )
    if failed:
        raise typer.Exit(1)


def _summary_table(summary: PerceiveSummary) -> Table:
    table = Table(title="perception summary")
    for col in ("video", "status", "segments", "computed", "cached", "time (s)"):
        table.add_column(col, overflow="fold")
    colour = {"ok": "green", "cached": "cyan", "failed": "red"}
    for r in summary.results:
        table.add_row(
            r.path,
            f"[{colour[r.status]}]{r.status}[/]",
            str(r.segments),
            ", ".join(r.computed) or "-",
            ", ".join(r.cached) or "-",
            f"{r.seconds:.1f}",
        )
    return table
