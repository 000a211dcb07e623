"""Synthetic test videos with known ground truth, written with PyAV.

Each frame shows a moving square on a flat background whose colour changes at every *cut*, and a
barcode strip along the bottom that encodes the frame's index in 16 bits. Tests (and ``vidagent
demo``) use them to check frame-accurate access, timestamps and shot detection against known truth;
:func:`read_frame_index` decodes the barcode back, also from frames resized at decode time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

BARCODE_BITS = 16
# Background colours of consecutive shots: far apart in every channel so a cut is unmistakable.
SHOT_COLOURS: tuple[tuple[int, int, int], ...] = (
    (30, 40, 140),
    (230, 140, 20),
    (20, 160, 60),
    (200, 30, 160),
    (240, 240, 240),
    (90, 60, 10),
)
CODECS = {"h264": ("libx264", "mp4"), "vp9": ("libvpx-vp9", "webm"), "mpeg4": ("mpeg4", "mp4")}


@dataclass(frozen=True)
class SyntheticVideo:
    """What was written: enough ground truth for tests to check decoders and segmenters."""

    path: Path
    fps: int
    num_frames: int
    width: int
    height: int
    codec: str
    cuts: tuple[int, ...] = field(default_factory=tuple)

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    def shot_of(self, frame_index: int) -> int:
        return sum(1 for c in self.cuts if c <= frame_index)


def render_frame(index: int, width: int, height: int, shot: int, num_frames: int) -> np.ndarray:
    """One RGB frame: background of the shot's colour, a moving square, the index barcode."""
    frame = np.empty((height, width, 3), dtype=np.uint8)
    frame[:] = SHOT_COLOURS[shot % len(SHOT_COLOURS)]
    bar_h = max(8, height // 8)
    side = max(8, min(width, height - bar_h) // 4)
    span_x = max(1, width - side)
    span_y = max(1, height - bar_h - side)
    t = index / max(1, num_frames - 1)
    x = int(t * span_x)
    y = int((0.5 + 0.4 * np.sin(2 * np.pi * t * 2 + shot)) * span_y)
    inverse = 255 - np.asarray(SHOT_COLOURS[shot % len(SHOT_COLOURS)], dtype=np.uint8)
    frame[y : y + side, x : x + side] = inverse
    bits = [(index >> b) & 1 for b in range(BARCODE_BITS)]
    block_w = width / BARCODE_BITS
    for b, bit in enumerate(bits):
        x0, x1 = int(round(b * block_w)), int(round((b + 1) * block_w))
        frame[height - bar_h :, x0:x1] = 255 if bit else 0
    return frame


def read_frame_index(frame: np.ndarray) -> int:
    """Decode the barcode written by :func:`render_frame` (works after decode-time resizing)."""
    height, width = frame.shape[:2]
    bar_h = max(2, height // 8)
    row = frame[height - bar_h // 2 - 1]
    gray = row.astype(np.float32).mean(axis=-1)
    block_w = width / BARCODE_BITS
    value = 0
    for b in range(BARCODE_BITS):
        centre = int((b + 0.5) * block_w)
        if gray[centre] > 127:
            value |= 1 << b
    return value


def write_video(
    path: str | Path,
    *,
    seconds: float = 4.0,
    fps: int = 10,
    width: int = 160,
    height: int = 120,
    codec: str = "h264",
    cuts: Sequence[int] = (),
    crf: int = 18,
    faststart: bool = False,
    gop: int | None = None,
) -> SyntheticVideo:
    """Write a synthetic video; ``cuts`` are frame indices where a new shot starts.

    ``faststart`` puts the MP4 index first (as web videos do), so a truncated file still opens and
    fails only at the missing frames. ``gop`` sets the keyframe interval.
    """
    import av

    if codec not in CODECS:
        raise ValueError(f"codec must be one of {sorted(CODECS)}, got {codec!r}")
    encoder, _ = CODECS[codec]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    num_frames = int(round(seconds * fps))
    if num_frames < 1:
        raise ValueError(f"seconds * fps must give at least one frame, got {seconds} * {fps}")
    cuts = tuple(sorted(int(c) for c in cuts))
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream: Any = container.add_stream(encoder, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        if codec == "h264":
            stream.options = {"crf": str(crf), "preset": "ultrafast"}
        elif codec == "vp9":
            stream.options = {
                "crf": str(crf + 10),
                "b": "0",
                "deadline": "realtime",
                "cpu-used": "8",
            }
        else:
            stream.options = {"qscale": "2"}
        if gop is not None:
            stream.codec_context.gop_size = gop
        for i in range(num_frames):
            shot = sum(1 for c in cuts if c <= i)
            image = render_frame(i, width, height, shot, num_frames)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return SyntheticVideo(path, fps, num_frames, width, height, codec, cuts)


def write_empty_video(path: str | Path) -> Path:
    """A container with an MPEG-4 stream and zero frames (AVI keeps such a stream; MP4 drops it)."""
    import av

    path = Path(path)
    with av.open(str(path), "w", format="avi") as container:
        stream: Any = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height = 64, 48
        stream.pix_fmt = "yuv420p"
        container.start_encoding()
    return path


def write_audio_only(path: str | Path, seconds: float = 1.0) -> Path:
    """A media file with an audio stream and no video stream."""
    import av

    path = Path(path)
    rate = 16000
    with av.open(str(path), "w") as container:
        stream: Any = container.add_stream("aac", rate=rate)
        samples = int(seconds * rate)
        t = np.arange(samples, dtype=np.float32) / rate
        wave = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
        chunk = 1024
        for s in range(0, samples, chunk):
            frame = av.AudioFrame.from_ndarray(wave[:, s : s + chunk], format="fltp", layout="mono")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
