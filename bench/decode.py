"""Frame sampling speed: vidagent's sampler against raw decord and PyAV on the same frame indices.

Usage::

    python bench/decode.py [--seconds 60] [--height 720] [--fps 30] [--gop 60] [--repeats 5]
                           [--frames 32] [--video PATH]

Without ``--video`` a synthetic H.264 clip (``vidagent.testing.synth.write_video``, 16:9, keyframe
every ``--gop`` frames) is written to a temporary folder. Three scenarios, each on one list of
indices:

* ``uniform-N``: ``N`` frames at the centres of equal bins (``--frames``, default 32);
* ``1fps``: one frame per second over the whole clip;
* ``seg2s-k4``: 4 frames in every 2 s window (:func:`vidagent.tools.segmenter.fixed_segments`).

Methods, each timed as open and sample separately with a fresh reader every run; after one untimed
warm-up, ``--repeats`` rounds run every method once in a rotating order (interleaved, so load from
other processes hits all methods alike). Median and best (fastest) run are reported:

* ``vidagent/decord``: ``open_video(backend="decord")`` + ``sample_uniform`` / ``sample_fps`` /
  ``sample_segments`` (the public sampler, including timestamps and batch splitting);
* ``decord``: ``decord.VideoReader(path)`` + ``get_batch(indices).asnumpy()``, the baseline;
* ``vidagent/pyav``: ``open_video(backend="pyav")`` + the same sampler calls;
* ``pyav``: plain PyAV, decoding from the start and converting the wanted frames to RGB.

Every method's frames are checked against raw decord's (pixel-equal for the decord-based ones,
barcode indices for the synthetic clip), so a fast wrong answer cannot win. The last column is
``total / decord total``; the goal is vidagent/decord under 1.10. Caveat: the synthetic clip is
flat colour and compresses far better than camera footage, so absolute decode times are lower than
for real video while fixed per-call costs (opening, probing) weigh relatively more.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vidagent.core.records import VideoInfo
from vidagent.testing.synth import read_frame_index, write_video
from vidagent.tools.sampling import (
    fps_indices,
    sample_fps,
    sample_segments,
    sample_uniform,
    segment_indices,
    uniform_indices,
)
from vidagent.tools.segmenter import fixed_segments
from vidagent.tools.video import FrameBatch, VideoSource, open_video, probe_video


@dataclass(frozen=True)
class Scenario:
    """A named sampling request: the indices raw decoders get, and the vidagent call that asks."""

    name: str
    indices: np.ndarray
    sample: Callable[[VideoSource], Any]


@dataclass(frozen=True)
class Timing:
    """Milliseconds of one method on one scenario (median and best run), and its frames."""

    open_ms: float
    sample_ms: float
    total_ms: float
    best_ms: float
    frames: np.ndarray


def scenarios(info: VideoInfo, frames: int) -> list[Scenario]:
    """The three sampling scenarios for a video."""
    segments = fixed_segments(info, 2.0)
    return [
        Scenario(
            f"uniform-{frames}",
            uniform_indices(info.num_frames, frames),
            lambda s: sample_uniform(s, frames),
        ),
        Scenario("1fps", fps_indices(info, 1.0), lambda s: sample_fps(s, 1.0)),
        Scenario(
            "seg2s-k4",
            np.concatenate(segment_indices(segments, 4)),
            lambda s: sample_segments(s, segments, 4),
        ),
    ]


def as_array(result: Any) -> np.ndarray:
    """Frames of any method's result as one array (done after timing: the copy is not timed)."""
    if isinstance(result, np.ndarray):
        return result
    if isinstance(result, FrameBatch):
        return result.frames
    return np.concatenate([b.frames for b in result])


Opener = Callable[[Path, "Scenario"], tuple[Any, Callable[[], Any]]]
"""Opens a reader for a scenario; returns (reader, a call that samples the scenario's frames)."""


def _vidagent(backend: str) -> Opener:
    def run(path: Path, scenario: Scenario) -> tuple[Any, Callable[[], Any]]:
        source = open_video(path, backend=backend)  # type: ignore[arg-type]
        return source, lambda: scenario.sample(source)

    return run


def _decord(path: Path, scenario: Scenario) -> tuple[Any, Callable[[], Any]]:
    import decord

    reader = decord.VideoReader(str(path), ctx=decord.cpu(0))
    return reader, lambda: reader.get_batch(scenario.indices).asnumpy()


def _pyav(path: Path, scenario: Scenario) -> tuple[Any, Callable[[], Any]]:
    import av

    container = av.open(str(path))

    def decode() -> np.ndarray:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        wanted = np.unique(scenario.indices)
        out: dict[int, np.ndarray] = {}
        pos = 0
        for i, frame in enumerate(container.decode(stream)):
            if i == wanted[pos]:
                out[i] = frame.to_ndarray(format="rgb24")
                pos += 1
                if pos == len(wanted):
                    break
        container.close()
        return np.stack([out[int(i)] for i in scenario.indices])

    return container, decode


METHODS: dict[str, Opener] = {
    "vidagent/decord": _vidagent("decord"),
    "decord": _decord,
    "vidagent/pyav": _vidagent("pyav"),
    "pyav": _pyav,
}


def measure(methods: list[str], path: Path, scenario: Scenario, repeats: int) -> dict[str, Timing]:
    """Open + sample, a fresh reader each time: one warm-up per method, then ``repeats`` rounds
    that run every method once, in a rotating order, so background load hits all alike."""
    opens: dict[str, list[float]] = {m: [] for m in methods}
    samples: dict[str, list[float]] = {m: [] for m in methods}
    totals: dict[str, list[float]] = {m: [] for m in methods}
    frames: dict[str, np.ndarray] = {}
    for r in range(repeats + 1):
        for m in methods[r % len(methods) :] + methods[: r % len(methods)]:
            t0 = time.perf_counter()
            handle, sample = METHODS[m](path, scenario)
            t1 = time.perf_counter()
            result = sample()
            t2 = time.perf_counter()
            if r == 0:  # warm-up round: keep the frames for checking, not the time
                frames[m] = as_array(result)
            else:
                opens[m].append((t1 - t0) * 1e3)
                samples[m].append((t2 - t1) * 1e3)
                totals[m].append((t2 - t0) * 1e3)
            del handle, sample, result
    med = statistics.median
    return {
        m: Timing(med(opens[m]), med(samples[m]), med(totals[m]), min(totals[m]), frames[m])
        for m in methods
    }


@dataclass(frozen=True)
class WrapperCost:
    """What vidagent adds around decord without decoding anything (ms; best and median run)."""

    open_best: float
    open_median: float
    timestamps_best: float
    timestamps_median: float

    @property
    def per_call(self) -> float:
        """Extra milliseconds per open + sample, from the best runs (the least disturbed by other
        processes; the open difference floored at 0)."""
        return max(0.0, self.open_best) + self.timestamps_best


def wrapper_cost(path: Path, indices: np.ndarray, runs: int = 40) -> WrapperCost:
    """Cost of ``open_video`` over ``decord.VideoReader`` (interleaved, difference of the two), and
    of the timestamps ``get_frames`` adds to ``get_batch`` (``frame_times`` on a fresh source: the
    first call fetches the PTS table). Cheap, so many runs: far less noisy than decode timings."""
    import decord

    ours: list[float] = []
    raw: list[float] = []
    stamps: list[float] = []
    for _ in range(runs):
        t0 = time.perf_counter()
        source = open_video(path, backend="decord")
        t1 = time.perf_counter()
        source.frame_times(indices)
        t2 = time.perf_counter()
        decord.VideoReader(str(path), ctx=decord.cpu(0))
        t3 = time.perf_counter()
        ours.append((t1 - t0) * 1e3)
        stamps.append((t2 - t1) * 1e3)
        raw.append((t3 - t2) * 1e3)
    med = statistics.median
    return WrapperCost(min(ours) - min(raw), med(ours) - med(raw), min(stamps), med(stamps))


def check(
    method: str, scenario: Scenario, got: np.ndarray, ref: np.ndarray, synthetic: bool
) -> str:
    """'ok', or what is wrong with ``got`` compared with raw decord's frames ``ref``."""
    if got.shape != ref.shape:
        return f"shape {got.shape} != {ref.shape}"
    if synthetic:
        shown = [read_frame_index(f) for f in got]
        if shown != scenario.indices.tolist():
            return "wrong frames (barcode)"
    if method.endswith("decord") and not np.array_equal(got, ref):
        return "pixels differ from decord"
    return "ok"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, help="an existing video instead of a synthetic clip")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--gop", type=int, default=60, help="keyframe interval of the clip")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--frames", type=int, default=32, help="frames in the uniform scenario")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset")
    args = parser.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; choose from {list(METHODS)}")

    with tempfile.TemporaryDirectory(prefix="vidagent-bench-") as tmp:
        synthetic = args.video is None
        if synthetic:
            width = int(round(args.height * 16 / 9 / 2)) * 2
            path = Path(tmp) / f"clip_{args.height}p.mp4"
            t0 = time.perf_counter()
            write_video(
                path,
                seconds=args.seconds,
                fps=args.fps,
                width=width,
                height=args.height,
                gop=args.gop,
            )
            print(f"wrote {path.name} in {time.perf_counter() - t0:.1f}s", flush=True)
        else:
            path = args.video
        info = probe_video(path, verify=False)
        print(
            f"video: {path.name}  {info.width}x{info.height}  {info.fps:g} fps  "
            f"{info.num_frames} frames  {info.duration:.1f}s  {info.codec}"
            + (f"  gop {args.gop}" if synthetic else "")
        )
        print(
            f"ms; median of {args.repeats} interleaved runs (+1 warm-up), fresh reader per run; "
            "best = fastest run; ratios vs raw decord\n"
        )
        header = (
            f"{'scenario':<11} {'frames':>6}  {'method':<16} {'open':>7} {'sample':>8} "
            f"{'total':>8} {'best':>8}  {'total/dec':>9} {'best/dec':>8}  check"
        )
        print(header)
        print("-" * len(header))
        decord_totals: list[tuple[Scenario, float]] = []
        for scenario in scenarios(info, args.frames):
            results = measure(methods, path, scenario, args.repeats)
            ref = results.get("decord")
            if ref is not None:
                decord_totals.append((scenario, ref.total_ms))
            for m, r in results.items():
                if ref is not None:
                    ratios = f"{r.total_ms / ref.total_ms:9.3f} {r.best_ms / ref.best_ms:8.3f}"
                    status = check(m, scenario, r.frames, ref.frames, synthetic)
                else:
                    ratios, status = f"{'-':>9} {'-':>8}", "-"
                print(
                    f"{scenario.name:<11} {len(scenario.indices):>6}  {m:<16} {r.open_ms:7.1f} "
                    f"{r.sample_ms:8.1f} {r.total_ms:8.1f} {r.best_ms:8.1f}  {ratios}  {status}"
                )
            print()
        if "decord" in methods:
            print("vidagent/decord wrapper cost without decoding (ms, best / median of 40 runs):")
            for scenario, ref_ms in decord_totals:
                cost = wrapper_cost(path, scenario.indices)
                print(
                    f"  {scenario.name:<11} open_video - VideoReader {cost.open_best:+.2f} / "
                    f"{cost.open_median:+.2f}   timestamps {cost.timestamps_best:.2f} / "
                    f"{cost.timestamps_median:.2f}   = {cost.per_call:.2f} ms per call (best) = "
                    f"{100 * cost.per_call / ref_ms:.2f}% of raw decord's {ref_ms:.0f} ms"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
