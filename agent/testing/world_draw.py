"""Drawing the synthetic world's actions (:mod:`vidagent.testing.world`) and encoding its clips.

A frame shows one object on a grey background: the **noun** is the object's colour and shape
(:data:`NOUN_LOOKS`), the **verb** a prop in its own colour and place (the shelf one takes from,
the table one puts on, the cutting board, the burner, the sink, the door frame: :data:`PROPS`) and
the object's motion over the segment (:func:`motion`). Each action instance gets its own jitter
(position, size, phase, a tint of the clip's background shade) and every frame pixel noise, so a
class is a cloud of embeddings, not a point.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

# Noun appearance: RGB colour and shape (half-width, half-height in frame units).
NOUN_LOOKS: dict[str, tuple[tuple[int, int, int], str, float, float]] = {
    "knife": ((240, 220, 40), "bar", 0.30, 0.08),
    "onion": ((160, 40, 200), "disk", 0.14, 0.14),
    "pan": ((230, 30, 40), "ring", 0.21, 0.21),
    "cup": ((40, 90, 250), "box", 0.13, 0.17),
    "fridge": ((40, 200, 90), "box", 0.14, 0.26),
}
_WATER = (170, 220, 255)
# Verb props, each with its own colour and place (x0, x1, y0, y1 in frame units): where the verb
# happens (the shelf one takes from, the table one puts on, the board, the burner, the sink, the
# door), so a verb is visible in one frame as well as in the motion.
PROPS: dict[str, tuple[tuple[int, int, int], tuple[float, float, float, float]]] = {
    "take": ((120, 70, 30), (0.0, 1.0, 0.04, 0.14)),
    "put": ((185, 185, 170), (0.0, 1.0, 0.88, 0.98)),
    "cut": ((210, 170, 110), (0.18, 0.82, 0.52, 0.64)),
    "wash": ((120, 130, 140), (0.22, 0.78, 0.86, 0.96)),
}


def plain_label(entry: str) -> str:
    """``take_(pick,_grab,_get)`` -> ``take``: a taxonomy entry without its synonyms."""
    return entry.partition("_(")[0].replace("_", " ")


def motion(verb: str, u: float, jitter: np.ndarray) -> tuple[float, float, float]:
    """Centre (x, y) and scale of the object at progress ``u`` in [0, 1) of a segment."""
    dx, dy, phase = float(jitter[0]), float(jitter[1]), float(jitter[2])
    turn = 2 * np.pi
    name = plain_label(verb)
    if name == "take":  # rises to the shelf, on the left
        return 0.27 + dx, 0.78 - 0.56 * u + dy, 1.0
    if name == "put":  # sinks to the table, on the right
        return 0.73 + dx, 0.22 + 0.56 * u + dy, 1.0
    if name == "cut":  # shakes sideways over the board
        return 0.5 + 0.22 * np.sin(turn * (3 * u + phase)) + dx, 0.42 + dy, 1.0
    if name == "stir":  # circles over the burner
        angle = turn * (2 * u + phase)
        return 0.5 + 0.22 * np.cos(angle) + dx, 0.5 + 0.22 * np.sin(angle) + dy, 0.8
    if name == "wash":  # jitters under the water
        return 0.5 + 0.04 * np.sin(turn * (5 * u + phase)) + dx, 0.74 + dy, 1.0
    return 0.5 + dx, 0.5 + dy, 0.6 + 0.9 * u  # open: grows in the door frame


def _draw_props(frame: np.ndarray, verb: str, x: np.ndarray, y: np.ndarray, cy: float) -> None:
    name = plain_label(verb)
    if name in PROPS:
        colour, (x0, x1, y0, y1) = PROPS[name]
        frame[(x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)] = colour
    if name == "wash":  # water falling onto the object
        frame[(np.abs(x - 0.5) < 0.12) & (y < cy) & (np.sin(x * 60.0) > 0)] = _WATER
    elif name == "stir":  # the burner under the pan
        r = np.sqrt((x - 0.5) ** 2 + (y - 0.5) ** 2)
        frame[(r >= 0.3) & (r <= 0.35)] = (10, 10, 10)
    elif name == "open":  # the door frame
        inside = (x > 0.12) & (x < 0.88) & (y > 0.08) & (y < 0.92)
        frame[inside & ~((x > 0.16) & (x < 0.84) & (y > 0.12) & (y < 0.88))] = (235, 235, 235)


def render_action_frame(
    verb: str,
    noun: str,
    u: float,
    *,
    size: int,
    background: np.ndarray,
    jitter: np.ndarray,
    scale: float,
    noise: np.ndarray | None = None,
) -> np.ndarray:
    """One RGB frame of ``verb noun`` at progress ``u`` of its segment."""
    colour, shape, half_w, half_h = NOUN_LOOKS[noun]
    cx, cy, grow = motion(verb, u, jitter)
    half_w, half_h = half_w * scale * grow, half_h * scale * grow
    grid = (np.arange(size, dtype=np.float32) + 0.5) / size
    x, y = grid[None, :], grid[:, None]
    frame = np.empty((size, size, 3), np.float32)
    frame[:] = background
    _draw_props(frame, verb, x, y, cy)
    nx, ny = (x - cx) / half_w, (y - cy) / half_h
    if shape in ("bar", "box"):
        mask = (np.abs(nx) <= 1) & (np.abs(ny) <= 1)
    else:
        r = np.sqrt(nx**2 + ny**2)
        mask = (r <= 1) & (r >= 0.4) if shape == "ring" else r <= 1
    frame[mask] = colour
    if noise is not None:
        frame += noise
    return np.clip(frame, 0, 255).astype(np.uint8)


def write_clip(
    path: Path,
    actions: Sequence[tuple[str, str, float, float]],
    *,
    fps: int,
    size: int,
    segment_seconds: float,
    noise: float,
    crf: int,
    seed: int,
) -> int:
    """Render ``(verb, noun, start, end)`` actions back to back and encode them as H.264 (PyAV, as
    :mod:`vidagent.testing.synth` does); the number of frames written."""
    import av

    rng = np.random.default_rng(seed)
    seg_frames = int(round(segment_seconds * fps))
    base = rng.uniform(50, 70)  # the clip's background shade
    frames = 0
    with av.open(str(path), "w") as container:
        stream: Any = container.add_stream("libx264", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "ultrafast"}
        for verb, noun, start, end in actions:
            count = int(round((end - start) * fps))
            jitter = np.array([*rng.uniform(-0.06, 0.06, 2), rng.uniform(0, 1)])
            scale = float(rng.uniform(0.85, 1.15))
            background = base + rng.uniform(-8, 8, size=3)
            for i in range(count):
                u = (i % seg_frames) / seg_frames  # each segment of a long action: a whole motion
                pixels = rng.normal(0, noise, (size, size, 3)) if noise else None
                image = render_action_frame(
                    verb, noun, u, size=size, background=background, jitter=jitter,
                    scale=scale, noise=pixels,
                )  # fmt: skip
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
            frames += count
        for packet in stream.encode():
            container.mux(packet)
    return frames
