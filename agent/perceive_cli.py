"""``vidagent perceive``: run the perception tools over videos and write one timeline JSON each.

A thin shell over :func:`tools.perceive.perceive_many` (or, with ``--engine ray``,
:func:`tools.perceive_ray.perceive_ray`, which builds the tools in each Ray actor from the same
options): it builds the tools from the options, opens the perception store from the settings,
shows a progress bar on stderr, prints a summary table and exits with status 1 when any video
failed (the others are still written). Bad options are one :class:`~agent.errors.ConfigError` line
(status 2 through ``agent.cli.main``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agent.errors import ConfigError
from tools.actions import ActionParams, ActionRecognizer
from tools.captioner import (
    DEFAULT_CAPTIONER,
    Captioner,
    CaptionerParams,
    ServedCaptioner,
    ServedCaptionerParams,
)
from tools.embedder import DEFAULT_VISUAL_MODEL, EmbedderParams, SegmentEmbedder
from tools.models import PerceptionTool
from tools.video import VIDEO_SUFFIXES


def _params(cls: type[BaseModel], **values: Any) -> Any:
    """Validated tool params; a bad value is one ConfigError line naming the option."""
    try:
        return cls(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}={e.get('input')!r}: {e['msg']}"
            for e in exc.errors()
        )
        raise ConfigError(f"invalid {cls.__name__}: {problems}") from None


def find_videos(videos: list[Path] | None, videos_dir: Path | None) -> list[Path]:
    """The videos named, then every video file under ``videos_dir`` (recursively, sorted)."""
    found = list(videos or [])
    if videos_dir is not None:
        if not videos_dir.is_dir():
            raise ConfigError(f"--videos-dir {videos_dir}: not a directory")
        in_dir = sorted(
            p
            for p in videos_dir.rglob("*")
            if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith(".")
        )
        if not in_dir:
            suffixes = " ".join(sorted(VIDEO_SUFFIXES))
            raise ConfigError(f"--videos-dir {videos_dir}: no video files ({suffixes})")
        found.extend(in_dir)
    if not found:
        raise ConfigError("no videos given: name video files or use --videos-dir DIR")
    return list(dict.fromkeys(found))


def build_tools(
    *,
    store: Any,
    captions: bool,
    actions: bool,
    embeddings: bool,
    captioner: str,
    captioner_url: str | None,
    caption_prompt: str | None,
    caption_frames: int,
    caption_max_tokens: int,
    action_model: str,
    taxonomy: Path | None,
    action_head: Path | None,
    top_k: int,
    embedder: str,
    frames_per_segment: int,
    batch_size: int | None,
    device: str,
    dtype: str,
) -> list[PerceptionTool]:
    """The tools the options ask for (none loads a model yet)."""
    tools: list[PerceptionTool] = []
    run = {"device": device, "dtype": dtype, "batch_size": batch_size}
    if captions:
        if captioner_url:
            served = _params(
                ServedCaptionerParams,
                model=captioner,
                base_url=captioner_url,
                prompt=caption_prompt,
                frames_per_segment=caption_frames,
                max_tokens=caption_max_tokens,
            )
            tools.append(ServedCaptioner(served))
        else:
            params = _params(
                CaptionerParams,
                model=captioner,
                prompt=caption_prompt,
                frames_per_segment=caption_frames,
                max_new_tokens=caption_max_tokens,
                **run,
            )
            tools.append(Captioner(params))
    if embeddings:
        params = _params(
            EmbedderParams, model=embedder, frames_per_segment=frames_per_segment, **run
        )
        tools.append(SegmentEmbedder(params))
    if actions:
        params = _params(
            ActionParams,
            model=action_model,
            taxonomy=taxonomy,
            head=action_head,
            top_k=top_k,
            frames_per_segment=frames_per_segment,
            **run,
        )
        tools.append(ActionRecognizer(params, store=store))
    if not tools:
        raise ConfigError("--no-captions, --no-actions and --no-embeddings leave nothing to run")
    return tools


def perceive(
    videos: Annotated[
        list[Path] | None, typer.Argument(help="Video files.", show_default=False)
    ] = None,
    videos_dir: Annotated[
        Path | None, typer.Option("--videos-dir", help="Also every video under this folder.")
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the timeline JSON files.")
    ] = Path("timelines"),
    captioner: Annotated[
        str, typer.Option("--captioner", help="Captioning VLM: hub id or local folder.")
    ] = DEFAULT_CAPTIONER,
    captioner_url: Annotated[
        str | None,
        typer.Option(
            "--captioner-url",
            help="Caption with a VLM served by vLLM at this OpenAI-compatible URL "
            "(http://host:8000/v1); --captioner is then the served model name.",
        ),
    ] = None,
    caption_prompt: Annotated[
        str | None, typer.Option("--caption-prompt", help="Instruction (chat VLMs) or prefix.")
    ] = None,
    caption_frames: Annotated[
        int, typer.Option("--caption-frames", min=1, help="Frames per segment for captions.")
    ] = 1,
    caption_max_tokens: Annotated[
        int, typer.Option("--caption-max-tokens", min=1, help="Longest caption, in tokens.")
    ] = 40,
    action_model: Annotated[
        str, typer.Option("--action-model", help="CLIP/SigLIP model for zero-shot actions.")
    ] = DEFAULT_VISUAL_MODEL,
    taxonomy: Annotated[
        Path | None,
        typer.Option(
            "--taxonomy", help='Verb/noun taxonomy JSON ({"verbs": [...], "nouns": [...]}).'
        ),
    ] = None,
    action_head: Annotated[
        Path | None, typer.Option("--action-head", help="Trained linear head (.safetensors).")
    ] = None,
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="Action labels per segment.")] = 5,
    embedder: Annotated[
        str, typer.Option("--embedder", help="CLIP/SigLIP model for segment embeddings.")
    ] = DEFAULT_VISUAL_MODEL,
    seconds: Annotated[
        float | None, typer.Option("--seconds", "-s", help="Fixed segment length (default 2).")
    ] = None,
    shots: Annotated[
        bool, typer.Option("--shots", help="Cut segments at shot boundaries.")
    ] = False,
    max_shot_seconds: Annotated[
        float, typer.Option(help="With --shots: split shots longer than this (0: never).")
    ] = 10.0,
    frames_per_segment: Annotated[
        int,
        typer.Option(
            "--frames-per-segment", min=1, help="Frames per segment (actions, embeddings)."
        ),
    ] = 4,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", min=1, help="Images per forward pass.")
    ] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N.")] = "auto",
    dtype: Annotated[
        str, typer.Option("--dtype", help="auto (bf16/fp16 on GPU, fp32 on CPU), float32...")
    ] = "auto",
    frame_size: Annotated[
        int, typer.Option("--frame-size", min=0, help="Decode short side in pixels (0: native).")
    ] = 448,
    no_captions: Annotated[bool, typer.Option("--no-captions", help="Skip captioning.")] = False,
    no_actions: Annotated[bool, typer.Option("--no-actions", help="Skip action labels.")] = False,
    no_embeddings: Annotated[
        bool, typer.Option("--no-embeddings", help="Skip segment embeddings.")
    ] = False,
    engine: Annotated[
        str, typer.Option("--engine", help="local (this process) or ray (Ray Data actor pool).")
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(
            "--address", help="--engine ray: cluster (auto, HOST:PORT, ray://HOST:10001)."
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="--engine ray: model-holding actors.")
    ] = 1,
    videos_per_task: Annotated[
        int, typer.Option("--videos-per-task", min=1, help="--engine ray: videos per actor call.")
    ] = 4,
    gpus_per_worker: Annotated[
        float | None,
        typer.Option("--gpus-per-worker", min=0, help="--engine ray: GPUs per actor (auto)."),
    ] = None,
) -> None:
    """Caption, label and embed every segment of videos; write one timeline JSON per video.

    Results are cached by the videos' content: re-running skips what is already done.
    """
    from agent.settings import load_settings
    from agent.store import PerceptionStore

    if shots and seconds is not None:
        raise ConfigError("--seconds and --shots are exclusive: choose one segmentation")
    if engine not in ("local", "ray"):
        raise ConfigError(f"--engine {engine!r}: choose local or ray")
    if engine == "local" and address is not None:
        raise ConfigError("--address needs --engine ray")
    paths = find_videos(videos, videos_dir)
    store = PerceptionStore(load_settings().store_dir)
    make_tools = functools.partial(
        build_tools,
        captions=not no_captions,
        actions=not no_actions,
        embeddings=not no_embeddings,
        captioner=captioner,
        captioner_url=captioner_url,
        caption_prompt=caption_prompt,
        caption_frames=caption_frames,
        caption_max_tokens=caption_max_tokens,
        action_model=action_model,
        taxonomy=taxonomy,
        action_head=action_head,
        top_k=top_k,
        embedder=embedder,
        frames_per_segment=frames_per_segment,
        batch_size=batch_size,
        device=device,
        dtype=dtype,
    )
    ray_plan = None
    if engine == "ray":
        from tools.perceive_ray import RayPlan

        ray_plan = RayPlan(workers, videos_per_task, gpus_per_worker)
    tools = make_tools(store=store)  # validates the options before any video is touched
    with stderr_console() as err:
        shot_params = {"max_seconds": max_shot_seconds or None} if shots else None
        common: dict[str, Any] = {
            "store": store,
            "out_dir": out,
            "seconds": seconds if seconds is not None else (None if shots else 2.0),
            "shots": shots,
            "shot_params": shot_params,
            "frame_size": frame_size or None,
        }
        if ray_plan is None:
            from tools.perceive import perceive_many

            engine_fn = functools.partial(perceive_many, paths, tools=tools, **common)
        else:
            from tools.perceive_ray import perceive_ray

            engine_fn = functools.partial(
                perceive_ray, paths, make_tools=make_tools, plan=ray_plan, address=address,
                **common,
            )  # fmt: skip
        summary = _run(len(paths), err, engine_fn)
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


def _run(count: int, err: Console, engine: Callable[..., Any]) -> Any:
    """``engine(progress=...)`` (a perceive function with its arguments bound) under a progress
    bar on ``err``; its summary."""
    with progress_bar(count, err) as on_progress:
        return engine(progress=on_progress)


@contextlib.contextmanager
def progress_bar(count: int, err: Console) -> Iterator[Callable[[Any], None]]:
    """A transient bar of ``count`` videos and their segments on ``err``; yields the perception
    pipeline's ``progress`` callback."""
    from tools.perceive import ProgressEvent

    bar = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    with bar:
        videos_task = bar.add_task("videos", total=count)
        segments_task = bar.add_task("segments", total=0)

        def on_progress(event: ProgressEvent) -> None:
            if event.kind == "planned":
                total = bar.tasks[segments_task].total or 0
                bar.update(segments_task, total=total + event.count)
            elif event.kind == "segments":
                bar.advance(segments_task, event.count)
            else:
                bar.advance(videos_task)
                bar.update(videos_task, description=f"videos ({Path(event.path).name})")

        yield on_progress


@contextlib.contextmanager
def stderr_console() -> Iterator[Console]:
    """A console on the real stderr while FFmpeg/decord noise on fd 2 goes to /dev/null (their
    message is in the recorded error already); the tools' log warnings (OOM halving) go to it."""
    from agent.cli import quiet_native_stderr

    sys.stderr.flush()
    with os.fdopen(os.dup(2), "w", encoding="utf-8", errors="replace") as tty:
        console = Console(file=tty)
        handler = RichHandler(console=console, show_time=False, show_path=False)
        handler.setLevel(logging.WARNING)
        logger = logging.getLogger("tools")
        logger.addHandler(handler)
        try:
            with quiet_native_stderr():
                yield console
        finally:
            logger.removeHandler(handler)


def _summary_table(summary: Any) -> Table:
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
