"""Perception throughput: frames/s and segments/s per tool and end to end, cold and cached.

Source: one generated clip (:func:`vidagent.testing.synth.write_video`, default 60 s, 25 fps,
640x360 H.264, a cut every 10 s), cut into 2 s segments (30 segments). Models: random weights,
built offline by :mod:`vidagent.testing.tiny_models`:

* ``tiny``: the test models (CLIP hidden 32, BLIP hidden 32): pipeline overhead (decoding,
  preprocessing, store) dominates.
* ``real``: real-size architectures, CLIP ViT-B/16 (embedder + zero-shot actions) and BLIP base
  (captioner): realistic compute per image for those architectures on this machine. Random
  weights generate junk until ``max_new_tokens``: caption timings are an upper bound for that
  length.

Stages: ``decode`` (frames per segment for all segments); each tool's ``run`` on pre-decoded
frames (models loaded and warmed up on 2 segments first, timed once on its own row);
``end-to-end cold store`` (empty store, models loaded: hash video and local weights, segment,
decode, all tools, store writes, JSON); ``end-to-end cached`` (the same again: store hits only).
The metric is wall-clock seconds, best of ``--repeat`` runs (other processes only ever add time),
on this machine (``--threads`` torch threads). Caveats: CPU only (no GPU here); the generated video
is easy to decode compared with camera footage.

Usage: ``python bench/perception.py [--models tiny,real] [--seconds 60] [--batch-size 16]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _best(fn: Callable[[], Any], repeat: int) -> tuple[Any, float]:
    """``fn()``'s last result and its fastest time over ``repeat`` runs (noise only adds time)."""
    out, times = None, []
    for _ in range(repeat):
        out, t = _timed(fn)
        times.append(t)
    return out, min(times)


def bench_models(
    kind: str,
    video: Path,
    work: Path,
    *,
    batch_size: int,
    max_new_tokens: int,
    k: int,
    repeat: int,
) -> list[tuple[str, ...]]:
    from vidagent.store.perception import PerceptionStore
    from vidagent.testing.tiny_models import build_random_blip, build_random_clip, build_tiny
    from vidagent.tools.actions import ActionParams, ActionRecognizer
    from vidagent.tools.captioner import Captioner, CaptionerParams
    from vidagent.tools.perceive import perceive_many
    from vidagent.tools.sampling import sample_segments
    from vidagent.tools.segmenter import build_timeline
    from vidagent.tools.video import open_video
    from vidagent.tools.visual_embedder import EmbedderParams, SegmentEmbedder

    models = work / "models" / kind
    if kind == "tiny":
        clip, blip = build_tiny("clip", models), build_tiny("blip", models)
    else:
        clip, blip = build_random_clip(models / "clip-b16"), build_random_blip(models / "blip")
    rows: list[tuple[str, ...]] = []

    def row(stage: str, frames: int, segments: int, seconds: float) -> None:
        rows.append(
            (
                kind,
                stage,
                str(frames),
                str(segments),
                f"{seconds:.2f}",
                f"{frames / seconds:.1f}" if frames else "-",
                f"{segments / seconds:.2f}",
            )
        )

    timeline = build_timeline(video, seconds=2.0)
    n = len(timeline.segments)
    with open_video(video, height=360) as source:
        frames_k, t = _best(lambda: sample_segments(source, timeline.segments, k), repeat)
        row(f"decode k={k}", n * k, n, t)
        frames_1, t = _best(lambda: sample_segments(source, timeline.segments, 1), repeat)
        row("decode k=1", n, n, t)

    def fresh_store() -> PerceptionStore:
        return PerceptionStore(tempfile.mkdtemp(dir=work, prefix=f"store-{kind}-"))

    store = fresh_store()

    def make_tools() -> list[Any]:
        run = {"batch_size": batch_size, "device": "cpu"}
        return [
            Captioner(
                CaptionerParams(model=str(blip), max_new_tokens=max_new_tokens, **run)  # type: ignore[arg-type]
            ),
            SegmentEmbedder(EmbedderParams(model=str(clip), frames_per_segment=k, **run)),  # type: ignore[arg-type]
            ActionRecognizer(
                ActionParams(model=str(clip), frames_per_segment=k, **run),  # type: ignore[arg-type]
                store=store,
            ),
        ]

    captioner, embedder, actions = make_tools()

    def load_and_warm_up() -> None:  # first calls pay for allocator and kernel set-up
        for tool, frames in ((captioner, frames_1), (embedder, frames_k), (actions, frames_k)):
            tool.setup()
            tool.run(frames[:2])

    _, t = _timed(load_and_warm_up)
    row("load models, class prompts, warm-up", 0, 0, t)
    _, t = _best(lambda: embedder.run(frames_k), repeat)
    row(f"embedder ({k} frames/segment)", n * k, n, t)
    _, t = _best(lambda: actions.run(frames_k), repeat)
    row(f"actions zero-shot ({k} frames/segment)", n * k, n, t)
    _, t = _best(lambda: captioner.run(frames_1), repeat)
    row(f"captioner ({max_new_tokens} new tokens)", n, n, t)

    out = work / f"timelines-{kind}"

    def cold() -> Any:
        nonlocal store
        store = fresh_store()  # empty store; the models stay loaded in this process
        return perceive_many([video], tools=make_tools(), store=store, out_dir=out)

    summary, t = _best(cold, repeat)
    assert summary.results[0].status == "ok", summary
    row("end-to-end cold store (3 tools)", n * (k + 1), n, t)
    summary, t = _best(
        lambda: perceive_many([video], tools=make_tools(), store=store, out_dir=out), repeat
    )
    assert summary.results[0].status == "cached", summary
    row("end-to-end cached (3 tools)", 0, n, t)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="tiny,real", help="tiny, real or both")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=20)
    parser.add_argument("--frames-per-segment", type=int, default=4)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--repeat", type=int, default=3, help="best of N (tiny models)")
    parser.add_argument("--repeat-real", type=int, default=1, help="best of N (real-size)")
    parser.add_argument("--work", type=Path, default=None, help="keep models/videos here")
    args = parser.parse_args()

    import torch
    from rich.console import Console
    from rich.table import Table

    from vidagent.testing.synth import write_video

    if args.threads:
        torch.set_num_threads(args.threads)
    work = args.work or Path(tempfile.mkdtemp(prefix="vidagent-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    video = work / f"clip{args.seconds}s.mp4"
    if not video.exists():
        cuts = list(range(250, args.seconds * 25, 250))
        write_video(video, seconds=args.seconds, fps=25, width=640, height=360, cuts=cuts)
    table = Table(
        title=f"perception throughput, {args.seconds} s 640x360 clip, 2 s segments, CPU "
        f"({torch.get_num_threads()} threads), batch {args.batch_size}"
    )
    for col in ("models", "stage", "frames", "segments", "seconds", "frames/s", "segments/s"):
        table.add_column(col, justify="left" if col in ("models", "stage") else "right")
    for kind in args.models.split(","):
        for r in bench_models(
            kind.strip(),
            video,
            work,
            batch_size=args.batch_size,
            max_new_tokens=args.max_new_tokens,
            k=args.frames_per_segment,
            repeat=args.repeat if kind.strip() == "tiny" else args.repeat_real,
        ):
            table.add_row(*r)
    Console(width=max(120, Console().width)).print(table)


if __name__ == "__main__":
    main()
