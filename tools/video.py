"""Open videos and decode frames at exact indices: decord first, PyAV when decord cannot read one.

Frame access is always by index (decord ``get_batch``; PyAV by presentation timestamp after a
keyframe seek); decord's ``seek()`` lands on the wrong frame and is never used. Every failure a
user can hit (missing file, not a video, no video stream, zero frames, truncated or corrupt data)
is raised as a :class:`~vidagent.core.errors.VideoError` subclass whose message names the file and
the cause.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from vidagent.core.errors import (
    ConfigError,
    CorruptVideoError,
    EmptyVideoError,
    MissingDependencyError,
    NotAVideoError,
    NoVideoStreamError,
    VideoError,
    VideoNotFoundError,
)
from vidagent.core.records import VideoInfo

Backend = Literal["auto", "decord", "pyav"]
VIDEO_SUFFIXES = frozenset(
    {
        ".mp4",
        ".m4v",
        ".mov",
        ".mkv",
        ".webm",
        ".avi",
        ".ogv",
        ".mpg",
        ".mpeg",
        ".ts",
        ".flv",
        ".wmv",
    }
)
"""File extensions taken as videos when a folder is listed (decoding itself goes by content)."""
Device = Literal["cpu", "cuda"]

# Leading bytes of container formats: a file that starts like a video but will not open is corrupt
# (typically truncated), not "not a video".
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (4, b"ftyp", "MP4/MOV"),
    (0, b"\x1a\x45\xdf\xa3", "Matroska/WebM"),
    (0, b"RIFF", "AVI"),
    (0, b"\x00\x00\x01\xba", "MPEG-PS"),
    (0, b"FLV", "FLV"),
    (0, b"OggS", "Ogg"),
    (0, b"\x30\x26\xb2\x75", "ASF/WMV"),
)


@dataclass(frozen=True)
class FrameBatch:
    """Decoded frames with the indices and presentation times (seconds) they came from."""

    frames: np.ndarray  # (N, H, W, 3) uint8, RGB
    indices: np.ndarray  # (N,) int64
    timestamps: np.ndarray  # (N,) float64 seconds from the start of the video

    def __len__(self) -> int:
        return int(self.indices.shape[0])


class VideoSource(Protocol):
    """An opened video. Use as a context manager or call :meth:`close`."""

    info: VideoInfo

    def get_frames(self, indices: Sequence[int] | np.ndarray) -> FrameBatch: ...

    def frame_times(self, indices: Sequence[int] | np.ndarray) -> np.ndarray: ...

    def close(self) -> None: ...

    def __enter__(self) -> VideoSource: ...

    def __exit__(self, *exc: object) -> None: ...


def sniff_container(path: Path) -> str | None:
    """Name of the container format the file's first bytes announce, or None."""
    with path.open("rb") as fh:
        head = fh.read(16)
    for offset, magic, name in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return name
    return None


def _check_file(path: Path) -> None:
    if not path.exists():
        raise VideoNotFoundError(path, "no such file")
    if not path.is_file():
        raise VideoNotFoundError(path, "not a regular file")
    if not os.access(path, os.R_OK):
        raise VideoNotFoundError(path, "permission denied")
    if path.stat().st_size == 0:
        raise NotAVideoError(path, "file is empty (0 bytes)")


def _short(exc: BaseException) -> str:
    """The useful last line of a decoder's error message."""
    text = str(exc).strip().splitlines()
    msg = text[-1] if text else type(exc).__name__
    if "Check failed" in msg or "ERROR" in msg:
        msg = msg.split("ERROR", 1)[-1].strip() if "ERROR" in msg else msg
    return msg[:200]


def _resize_dims(
    native_w: int, native_h: int, width: int | None, height: int | None
) -> tuple[int, int] | None:
    """Target (width, height) for decode-time resizing; one side given keeps the aspect ratio."""
    if width is None and height is None:
        return None
    if (width is not None and width <= 0) or (height is not None and height <= 0):
        raise ConfigError(f"resize width/height must be positive, got {width}x{height}")
    if width is None:
        assert height is not None
        width = max(2, int(round(native_w * height / native_h / 2)) * 2)
    if height is None:
        height = max(2, int(round(native_h * width / native_w / 2)) * 2)
    return width, height


def _as_indices(indices: Sequence[int] | np.ndarray, num_frames: int, path: str) -> np.ndarray:
    arr = np.asarray(indices, dtype=np.int64).reshape(-1)
    if arr.size and (arr.min() < 0 or arr.max() >= num_frames):
        bad = int(arr[(arr < 0) | (arr >= num_frames)][0])
        raise IndexError(f"{path}: frame index {bad} out of range [0, {num_frames})")
    return arr


class _Probe:
    """What PyAV says about a file without decoding: stream, codec, size, packet timestamps."""

    def __init__(self, path: Path) -> None:
        import av

        self.error: str | None = None
        self.has_video = False
        self.codec = "unknown"
        self.width = self.height = 0
        self.fps = 0.0
        self.declared_frames = 0
        try:
            with av.open(str(path)) as container:
                if not container.streams.video:
                    return
                stream = container.streams.video[0]
                self.has_video = True
                self.codec = stream.codec_context.name or "unknown"
                self.width = stream.codec_context.width
                self.height = stream.codec_context.height
                rate = stream.average_rate or stream.guessed_rate or stream.base_rate
                self.fps = float(rate) if rate else 0.0
                self.declared_frames = int(stream.frames or 0)
        except Exception as exc:  # PyAV raises many FFmpeg error types
            self.error = _short(exc)


class _DecordSource:
    def __init__(
        self, path: Path, probe: _Probe, size: tuple[int, int] | None, device: Device, threads: int
    ) -> None:
        import decord

        if device == "cuda":
            try:
                ctx = decord.gpu(0)
                decord.VideoReader(str(path), ctx=ctx)  # fail early if decord has no CUDA
            except Exception as exc:
                raise ConfigError(
                    f"decord cannot decode on the GPU ({_short(exc)}); the PyPI wheel is CPU-only: "
                    "build decord with CUDA or use device='cpu'"
                ) from exc
        else:
            ctx = decord.cpu(0)
        w, h = size if size else (-1, -1)
        self._reader = decord.VideoReader(
            str(path), ctx=ctx, width=w, height=h, num_threads=threads
        )
        self.path = str(path)
        n = len(self._reader)
        if n == 0:
            raise EmptyVideoError(path, "the video stream has zero frames")
        fps = float(self._reader.get_avg_fps()) or probe.fps
        shape = self._reader[0].shape if probe.width == 0 else None
        width = size[0] if size else (probe.width or (shape[1] if shape else 0))
        height = size[1] if size else (probe.height or (shape[0] if shape else 0))
        self.info = VideoInfo(
            path=str(path),
            fps=fps,
            num_frames=n,
            duration=n / fps,
            width=width,
            height=height,
            codec=probe.codec,
            backend="decord",
        )

    def frame_times(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        idx = _as_indices(indices, self.info.num_frames, self.path)
        if idx.size == 0:
            return np.zeros(0, dtype=np.float64)
        return np.asarray(self._reader.get_frame_timestamp(idx), dtype=np.float64)[:, 0]

    def get_frames(self, indices: Sequence[int] | np.ndarray) -> FrameBatch:
        idx = _as_indices(indices, self.info.num_frames, self.path)
        if idx.size == 0:
            h, w = self.info.height, self.info.width
            return FrameBatch(np.zeros((0, h, w, 3), np.uint8), idx, np.zeros(0))
        try:
            frames = self._reader.get_batch(idx).asnumpy()
        except Exception as exc:
            raise CorruptVideoError(
                self.path, f"cannot decode frames {idx.min()}..{idx.max()}: {_short(exc)}"
            ) from exc
        return FrameBatch(frames, idx, self.frame_times(idx))

    def close(self) -> None:
        self._reader = None

    def __enter__(self) -> _DecordSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _PyAVSource:
    """PyAV decoding with frame-exact access: packets are indexed once (no decoding) at open."""

    def __init__(self, path: Path, size: tuple[int, int] | None, threads: int) -> None:
        import av

        self.path = str(path)
        self._size = size
        self._container: Any = av.open(str(path))
        if not self._container.streams.video:
            self._container.close()
            raise NoVideoStreamError(path, "the file has no video stream")
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        if threads:
            stream.codec_context.thread_count = threads
        self._stream = stream
        pts: list[int] = []
        keys: list[int] = []
        for packet in self._container.demux(stream):
            if packet.size == 0 or packet.pts is None:
                continue
            pts.append(packet.pts)
            keys.append(bool(packet.is_keyframe))
        if not pts:
            self._container.close()
            raise EmptyVideoError(path, "the video stream has zero frames")
        order = np.argsort(np.asarray(pts, dtype=np.int64), kind="stable")
        self._pts = np.asarray(pts, dtype=np.int64)[order]
        self._key = np.asarray(keys, dtype=bool)[order]
        self._key_positions = np.flatnonzero(self._key)
        self._pts_to_index = {int(p): i for i, p in enumerate(self._pts)}
        if stream.time_base is None:
            self._container.close()
            raise CorruptVideoError(path, "the video stream has no time base")
        tb = float(stream.time_base)
        start = stream.start_time if stream.start_time is not None else int(self._pts[0])
        self._times = (self._pts - start) * tb
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else (len(pts) / max(self._times[-1], 1e-6))
        n = len(self._pts)
        self.info = VideoInfo(
            path=str(path),
            fps=fps,
            num_frames=n,
            duration=n / fps,
            width=size[0] if size else stream.codec_context.width,
            height=size[1] if size else stream.codec_context.height,
            codec=stream.codec_context.name or "unknown",
            backend="pyav",
        )

    def frame_times(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        idx = _as_indices(indices, self.info.num_frames, self.path)
        return self._times[idx].astype(np.float64)

    def _to_array(self, frame: Any) -> np.ndarray:
        if self._size:
            frame = frame.reformat(width=self._size[0], height=self._size[1], format="rgb24")
            return np.asarray(frame.to_ndarray())
        return np.asarray(frame.to_ndarray(format="rgb24"))

    def _runs(self, wanted: np.ndarray) -> list[list[int]]:
        """Group sorted indices so that each group is decoded after one keyframe seek."""
        runs: list[list[int]] = []
        for i in (int(x) for x in wanted):
            if runs and not self._key[runs[-1][-1] + 1 : i + 1].any():
                runs[-1].append(i)
            else:
                runs.append([i])
        return runs

    def _decode_run(self, run: list[int], out: dict[int, np.ndarray]) -> None:
        keys = self._key_positions[self._key_positions <= run[0]]
        keyframe = int(keys[-1]) if keys.size else 0
        wanted = set(run)
        try:
            self._container.seek(int(self._pts[keyframe]), stream=self._stream, backward=True)
            for frame in self._container.decode(self._stream):
                i = self._pts_to_index.get(int(frame.pts)) if frame.pts is not None else None
                if i is None:
                    continue
                if i in wanted:
                    out[i] = self._to_array(frame)
                if i >= run[-1]:
                    break
        except Exception as exc:  # FFmpeg decode errors
            raise CorruptVideoError(
                self.path, f"cannot decode frames {run[0]}..{run[-1]}: {_short(exc)}"
            ) from exc
        missing = [i for i in run if i not in out]
        if missing:
            raise CorruptVideoError(self.path, f"frame {missing[0]} could not be decoded")

    def get_frames(self, indices: Sequence[int] | np.ndarray) -> FrameBatch:
        idx = _as_indices(indices, self.info.num_frames, self.path)
        if idx.size == 0:
            h, w = self.info.height, self.info.width
            return FrameBatch(np.zeros((0, h, w, 3), np.uint8), idx, np.zeros(0))
        decoded: dict[int, np.ndarray] = {}
        for run in self._runs(np.unique(idx)):
            self._decode_run(run, decoded)
        frames = np.stack([decoded[int(i)] for i in idx])
        return FrameBatch(frames, idx, self.frame_times(idx))

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def __enter__(self) -> _PyAVSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_video(
    path: str | os.PathLike[str],
    *,
    backend: Backend = "auto",
    device: Device = "cpu",
    width: int | None = None,
    height: int | None = None,
    num_threads: int = 0,
) -> VideoSource:
    """Open ``path`` for frame-exact decoding.

    ``backend="auto"`` uses decord and falls back to PyAV when decord cannot read the file.
    ``width``/``height`` resize at decode time (one of them keeps the aspect ratio).
    ``device="cuda"`` asks decord for GPU decoding (needs a CUDA build of decord).
    """
    p = Path(path)
    _check_file(p)
    if backend not in ("auto", "decord", "pyav"):
        raise ConfigError(f"unknown video backend {backend!r} (auto, decord or pyav)")
    try:
        probe = _Probe(p)
    except ImportError as exc:
        raise MissingDependencyError("av", "video decoding") from exc
    if probe.error is None and not probe.has_video:
        raise NoVideoStreamError(p, "the file has no video stream")
    size = _resize_dims(probe.width, probe.height, width, height) if probe.has_video else None
    if size is None and (width or height) and not probe.has_video:
        size = (width or height or 0, height or width or 0)

    source = _open_source(p, probe, backend, size, device, num_threads)
    present = source.info.num_frames
    if probe.declared_frames > present + 1:
        source.close()
        raise CorruptVideoError(
            p,
            f"truncated: the container declares {probe.declared_frames} frames "
            f"but only {present} are present",
        )
    return source


def _open_source(
    p: Path,
    probe: _Probe,
    backend: Backend,
    size: tuple[int, int] | None,
    device: Device,
    num_threads: int,
) -> VideoSource:
    decord_error: str | None = None
    if backend in ("auto", "decord"):
        try:
            return _DecordSource(p, probe, size, device, num_threads)
        except (VideoError, ConfigError):
            raise
        except ImportError as exc:
            if backend == "decord":
                raise MissingDependencyError("decord", "video decoding") from exc
            decord_error = "decord is not installed"
        except Exception as exc:  # decord raises RuntimeError / DECORDError
            decord_error = _short(exc)
            if backend == "decord":
                _raise_unreadable(p, probe, decord_error)
    if probe.error is not None:
        _raise_unreadable(p, probe, decord_error or probe.error)
    try:
        return _PyAVSource(p, size, num_threads)
    except VideoError:
        raise
    except Exception as exc:
        _raise_unreadable(p, probe, _short(exc))
    raise AssertionError("unreachable")


def _raise_unreadable(path: Path, probe: _Probe, cause: str) -> None:
    container = sniff_container(path)
    if probe.error is None and not probe.has_video:
        raise NoVideoStreamError(path, "the file has no video stream")
    if container is not None:
        raise CorruptVideoError(
            path, f"looks like {container} but cannot be read (truncated or damaged): {cause}"
        )
    if probe.error is not None:
        raise NotAVideoError(path, f"not a video file the decoders understand ({probe.error})")
    raise CorruptVideoError(path, f"cannot be decoded: {cause}")


def probe_video(
    path: str | os.PathLike[str], *, backend: Backend = "auto", verify: bool = True
) -> VideoInfo:
    """Metadata of a video; with ``verify`` also decode its first and last frame to catch damage."""
    with open_video(path, backend=backend) as source:
        if verify:
            source.get_frames([0, source.info.num_frames - 1])
        return source.info
