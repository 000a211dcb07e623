"""``vidagent info`` / ``segments`` / ``frames`` / ``demo-video``: look at a video, no models.

Thin commands over :mod:`vidagent.tools`: metadata (:func:`~vidagent.tools.video.probe_video`), a
timeline of fixed windows or shots (shots through
:func:`~vidagent.tools.shot_cache.cached_shot_timeline`, the store entry ``perceive --shots``
reuses), and a contact sheet of sampled frames.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from vidagent.cli.options import JsonOpt, MaxShotSecondsOpt, SecondsOpt, ShotsOpt, VideoArg
from vidagent.cli.progress import steps_progress
from vidagent.core.errors import ConfigError
from vidagent.core.records import Timeline
from vidagent.tools.video_files import quiet_native_stderr

out = Console()
err = Console(stderr=True)

__all__ = ["demo_video", "frames", "info", "segments"]


def info(
    video: VideoArg,
    json_out: JsonOpt = False,
    hash_: Annotated[
        bool,
        typer.Option(
            "--hash/--no-hash", help="Compute the content hash (reads the file).", metavar=""
        ),
    ] = True,
) -> None:
    """Show a video's metadata: codec, fps, frame count, duration, size, content hash."""
    from vidagent.api.perception import open_store
    from vidagent.tools.video import probe_video

    with quiet_native_stderr():
        meta = probe_video(video)
    if hash_:
        meta = meta.model_copy(update={"content_hash": open_store().video_hash(video)})
    if json_out:
        out.print_json(meta.model_dump_json())
        return
    table = Table(title=str(video), show_header=False)
    for key, value in meta.model_dump().items():
        if key == "duration":
            value = f"{value:.3f} s"
        elif key == "fps":
            value = f"{value:.3f}"
        table.add_row(key, str(value))
    out.print(table)


def segments(
    video: VideoArg,
    seconds: SecondsOpt = None,
    shots: ShotsOpt = False,
    max_shot_seconds: MaxShotSecondsOpt = 10.0,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold", help="With --shots: cut threshold (0-1, lower cuts more).", metavar="X"
        ),
    ] = None,
    json_out: JsonOpt = False,
    out_file: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Also write the timeline JSON here.", metavar="FILE"),
    ] = None,
) -> None:
    """Cut a video into a timeline of segments (<seg_N> tokens with start and end seconds).

    Default: fixed 2 s windows. Shot detection results are cached by the video's content hash.
    """
    if shots and seconds is not None:
        raise ConfigError("--seconds and --shots are exclusive: choose one segmentation")
    timeline = build_timeline(video, seconds, shots, max_shot_seconds, threshold)
    text = timeline.model_dump_json(indent=2)
    if out_file is not None:
        write_text(out_file, text)
    if json_out:
        print(text)
        return
    table = Table(
        title=f"{video} — {len(timeline.segments)} segments ({timeline.segmentation.method})"
    )
    for col in ("token", "start (s)", "end (s)", "frames"):
        table.add_column(col, justify="left" if col == "token" else "right")
    for seg in timeline.segments:
        table.add_row(
            seg.token,
            f"{seg.start:.2f}",
            f"{seg.end:.2f}",
            f"{seg.start_frame}-{seg.end_frame - 1}",
        )
    out.print(table)


def build_timeline(
    video: Path,
    seconds: float | None,
    shots: bool,
    max_shot_seconds: float,
    threshold: float | None,
) -> Timeline:
    """The timeline ``segments`` prints (shots: cached in the perception store)."""
    from vidagent.api.perception import open_store
    from vidagent.tools.segmenter import build_timeline as cut
    from vidagent.tools.shot_cache import cached_shot_timeline
    from vidagent.tools.video import probe_video

    with quiet_native_stderr():
        probe_video(video, verify=True)
    if not shots:
        return cut(video, seconds=seconds or 2.0)
    params: dict[str, Any] = {"max_seconds": max_shot_seconds or None}
    if threshold is not None:
        params["threshold"] = threshold
    with steps_progress("detecting shots") as on_frames:
        return cached_shot_timeline(video, open_store(), progress=on_frames, **params)


def frames(
    video: VideoArg,
    out_file: Annotated[
        Path, typer.Option("--out", "-o", help="Output image (.png or .jpg).", metavar="FILE")
    ],
    num: Annotated[
        int, typer.Option("--num", "-n", min=1, max=400, help="Frames to sample.", metavar="N")
    ] = 16,
    columns: Annotated[
        int | None,
        typer.Option("--columns", help="Grid columns (default: about square).", metavar="N"),
    ] = None,
    tile_width: Annotated[
        int,
        typer.Option("--tile-width", min=32, max=1920, help="Tile width in pixels.", metavar="PX"),
    ] = 320,
) -> None:
    """Save a contact sheet: NUM frames sampled uniformly, each labelled with its timestamp."""
    from vidagent.tools.contact_sheet import save_contact_sheet, video_contact_sheet

    with quiet_native_stderr():
        image = video_contact_sheet(video, num, columns=columns, tile_width=tile_width)
    save_contact_sheet(image, out_file)
    err.print(f"wrote {out_file} ({num} frames, {image.width}x{image.height})")


def demo_video(
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Where to write the demo video and outputs (default: VIDAGENT_HOME/demo-video).",
            metavar="DIR",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Decode, segment and draw a generated video: a quick check of the video stack, offline."""
    from vidagent.core.settings import load_settings
    from vidagent.testing.synth import write_video

    out_dir = out_dir if out_dir is not None else load_settings().home / "demo-video"
    out_dir.mkdir(parents=True, exist_ok=True)
    video = out_dir / "demo.mp4"
    err.print(f"[bold]1/3[/bold] writing a 12 s synthetic video with 3 shots to {video}")
    write_video(video, seconds=12, fps=25, width=320, height=240, cuts=[75, 190])
    err.print("[bold]2/3[/bold] metadata and shot-based timeline")
    info(video, json_out=False, hash_=True)
    segments(
        video,
        seconds=None,
        shots=True,
        max_shot_seconds=4.0,
        threshold=None,
        json_out=False,
        out_file=out_dir / "timeline.json",
    )
    err.print("[bold]3/3[/bold] contact sheet")
    frames(video, out_file=out_dir / "frames.png", num=12, columns=4, tile_width=240)
    err.print(f"[green]done[/green]: outputs in {out_dir}/ (timeline.json, frames.png)")


def write_text(path: Path, text: str) -> None:
    """Write atomically: a crash never leaves a half-written file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
