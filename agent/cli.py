"""The ``vidagent`` command: a thin shell over the library.

This is the only place that builds objects from names and settings. User mistakes (bad file, bad
option, unreachable server) print one line and exit with status 2; nothing prints a traceback unless
``VIDAGENT_DEBUG=1`` is set.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from agent.errors import ConfigError, VidagentError

app = typer.Typer(
    name="vidagent",
    help=(
        "vidagent: an LLM-driven video understanding agent. It turns videos into timelines of "
        "segments (<seg_N> tokens with times, captions and action labels) and asks an LLM served "
        "by vLLM to answer questions, anticipate actions and localize moments."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
out = Console()
err = Console(stderr=True)

VideoArg = Annotated[Path, typer.Argument(help="Path to a video file (mp4, webm, mkv, avi, ...).")]
# Bump when shot detection changes its output for the same parameters (invalidates cached shots).
SHOTS_VERSION = "1"
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _register_subcommands() -> None:
    """Mount the commands and sub-apps that live in other modules."""
    from agent.chat_cli import chat
    from agent.perceive_cli import perceive
    from agent.serve_cli import serve
    from agent.task_cli import anticipate, ask, localize
    from agent.task_cli import demo as task_demo

    if getattr(app, "_vidagent_registered", False):
        return
    app._vidagent_registered = True  # type: ignore[attr-defined]
    app.command("perceive")(perceive)
    app.command("ask")(ask)
    app.command("anticipate")(anticipate)
    app.command("localize")(localize)
    app.command("demo")(task_demo)
    app.command("chat")(chat)
    app.command("serve")(serve)
    with contextlib.suppress(ImportError):
        from agent.llm.cli import app as llm_app

        app.add_typer(llm_app, name="llm", help="Check and use the LLM server (vLLM).")
    with contextlib.suppress(ImportError):
        from agent.retrieval.cli import app as index_app

        app.add_typer(index_app, name="index", help="Build, search and inspect example banks.")
    from agent.eval_cli import app as eval_app

    app.add_typer(eval_app, name="eval", help="Score prediction files and run benchmarks.")


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence FFmpeg/decord messages written straight to file descriptor 2 by native code.

    Their content is already in the exception we raise; on a terminal they read like a crash.
    """
    if os.environ.get("VIDAGENT_DEBUG"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def progress_bar(transient: bool = True) -> Progress:
    """The progress bar every long command shows (on stderr, so stdout stays parseable)."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=transient,
    )


def _store() -> Any:
    from agent.settings import load_settings
    from agent.store import PerceptionStore

    return PerceptionStore(load_settings().store_dir)


@app.command()
def info(
    video: VideoArg,
    json_out: JsonOpt = False,
    hash_: Annotated[
        bool, typer.Option("--hash/--no-hash", help="Compute the content hash (reads the file).")
    ] = True,
) -> None:
    """Show a video's metadata: codec, fps, frame count, duration, size, content hash."""
    from tools.video import probe_video

    with quiet_native_stderr():
        meta = probe_video(video)
    if hash_:
        meta = meta.model_copy(update={"content_hash": _store().video_hash(video)})
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


@app.command()
def segments(
    video: VideoArg,
    seconds: Annotated[
        float | None, typer.Option("--seconds", "-s", help="Fixed window length in seconds.")
    ] = None,
    shots: Annotated[
        bool, typer.Option("--shots", help="Cut at shot boundaries instead of fixed windows.")
    ] = False,
    max_shot_seconds: Annotated[
        float, typer.Option(help="With --shots: split shots longer than this (0: never).")
    ] = 10.0,
    threshold: Annotated[
        float | None, typer.Option(help="With --shots: cut threshold (0-1, lower cuts more).")
    ] = None,
    json_out: JsonOpt = False,
    out_file: Annotated[
        Path | None, typer.Option("--out", "-o", help="Also write the timeline JSON here.")
    ] = None,
) -> None:
    """Cut a video into a timeline of segments (<seg_N> tokens with start and end seconds).

    Default: fixed 2 s windows. Shot detection results are cached by the video's content hash.
    """
    if shots and seconds is not None:
        raise ConfigError("--seconds and --shots are exclusive: choose one segmentation")
    timeline = _build_timeline(video, seconds, shots, max_shot_seconds, threshold)
    text = timeline.model_dump_json(indent=2)
    if out_file is not None:
        _write_text(out_file, text)
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


def _build_timeline(
    video: Path,
    seconds: float | None,
    shots: bool,
    max_shot_seconds: float,
    threshold: float | None,
) -> Any:
    from agent.records import Timeline
    from tools.segmenter import ShotParams, build_timeline
    from tools.video import probe_video

    with quiet_native_stderr():
        info = probe_video(video, verify=True)
    if not shots:
        return build_timeline(video, seconds=seconds or 2.0)
    params: dict[str, Any] = {"max_seconds": max_shot_seconds or None}
    if threshold is not None:
        params["threshold"] = threshold
    try:
        recorded = ShotParams(**params).recorded()
    except ValueError as exc:
        raise ConfigError(f"invalid shot detection option: {exc}") from None
    store = _store()
    with progress_bar() as bar:
        task = bar.add_task("detecting shots", total=info.num_frames)

        def compute() -> tuple[dict[str, Any], None]:
            timeline = build_timeline(
                video,  # a path: decoded small for analysis, not at full resolution
                shots=True,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
                **params,
            )
            return timeline.model_dump(mode="json"), None

        result = store.get_or_compute(
            store.video_hash(video), "segmenter.shots", SHOTS_VERSION, recorded, compute
        )
    timeline = Timeline.model_validate(result.value)
    # The cached record may come from a copy of this video at another path.
    return timeline.model_copy(update={"video": info})


@app.command()
def frames(
    video: VideoArg,
    out_file: Annotated[Path, typer.Option("--out", "-o", help="Output image (.png or .jpg).")],
    num: Annotated[int, typer.Option("--num", "-n", min=1, max=400, help="Frames to sample.")] = 16,
    columns: Annotated[
        int | None, typer.Option(help="Grid columns (default: about square).")
    ] = None,
    tile_width: Annotated[int, typer.Option(min=32, max=1920, help="Tile width in pixels.")] = 320,
) -> None:
    """Save a contact sheet: NUM frames sampled uniformly, each labelled with its timestamp."""
    from tools.contact_sheet import save_contact_sheet, video_contact_sheet

    with quiet_native_stderr():
        image = video_contact_sheet(video, num, columns=columns, tile_width=tile_width)
    save_contact_sheet(image, out_file)
    err.print(f"wrote {out_file} ({num} frames, {image.width}x{image.height})")


@app.command("demo-video")
def demo_video(
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Where to write the demo video and outputs.")
    ] = Path("vidagent-demo"),
) -> None:
    """Decode, segment and draw a generated video: a quick check of the video stack, offline."""
    from tools.synth import write_video

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


def _write_text(path: Path, text: str) -> None:
    """Write atomically: a crash never leaves a half-written file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: one line and a non-zero exit for every user error."""
    if not os.environ.get("VIDAGENT_DEBUG"):
        # Library chatter (tqdm bars while saving tiny models, torchvision fallback notices) reads
        # like trouble on a terminal; our own progress bars and errors say what matters.
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TQDM_DISABLE", "1")
    _register_subcommands()
    try:
        app(args=argv, prog_name="vidagent")
    except VidagentError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise SystemExit(130) from None
    except Exception as exc:
        if os.environ.get("VIDAGENT_DEBUG"):
            raise
        err.print(
            f"[red]internal error:[/red] {type(exc).__name__}: {exc} "
            "(set VIDAGENT_DEBUG=1 for the traceback and please report it)",
            highlight=False,
            soft_wrap=True,
        )
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
