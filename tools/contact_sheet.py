"""Contact sheets: sampled frames of a video in one labelled grid image.

A contact sheet is how a person checks, at a glance, what vidagent saw: which frames were sampled,
at what times, from which file. Each tile carries a label band with the frame's timestamp and index
(``12.40s  #310``); an optional title line names the video (file, duration, fps, resolution, codec).
The geometry is computed by :func:`sheet_layout` so callers (tests, a web UI mapping a click to a
frame) can locate each tile and label without re-deriving it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vidagent.core.errors import ConfigError
from vidagent.core.records import VideoInfo
from vidagent.tools.sampling import uniform_indices
from vidagent.tools.video import FrameBatch, VideoSource, open_video, probe_video

Box = tuple[int, int, int, int]
"""A pixel box ``(left, top, right, bottom)``, right and bottom exclusive (Pillow's convention)."""

BACKGROUND = (20, 21, 24)
LABEL_BACKGROUND = (40, 42, 48)
LABEL_TEXT = (242, 242, 242)
INDEX_TEXT = (150, 155, 165)
TITLE_TEXT = (250, 250, 250)
SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


@dataclass(frozen=True)
class SheetLayout:
    """Where everything goes on a sheet: overall size, and one tile and label box per frame."""

    width: int
    height: int
    columns: int
    rows: int
    tile_width: int
    tile_height: int
    padding: int
    label_height: int
    label_font_size: int
    title_height: int
    title_font_size: int
    tiles: tuple[Box, ...]
    labels: tuple[Box, ...]
    title: Box | None


def default_columns(count: int) -> int:
    """About as many columns as rows (``ceil(sqrt(count))``); landscape tiles make it wider."""
    return max(1, math.ceil(math.sqrt(count)))


def sheet_layout(
    count: int,
    frame_width: int,
    frame_height: int,
    *,
    columns: int | None = None,
    tile_width: int = 320,
    title: bool = False,
) -> SheetLayout:
    """Geometry of a sheet of ``count`` frames of ``frame_width`` x ``frame_height`` pixels.

    Tiles keep the frames' aspect ratio at ``tile_width`` pixels wide, filled row by row; each has
    a label band below it; a title band spans the top when ``title`` is set. Padding and font sizes
    scale with ``tile_width`` so small and large sheets look alike.
    """
    if count < 1:
        raise ConfigError(f"a contact sheet needs at least one frame, got {count}")
    if tile_width < 32:
        raise ConfigError(f"tile_width must be at least 32 pixels, got {tile_width}")
    if columns is not None and columns < 1:
        raise ConfigError(f"columns must be at least 1, got {columns}")
    if frame_width < 1 or frame_height < 1:
        raise ConfigError(f"frames have no pixels ({frame_width}x{frame_height})")
    cols = min(count, columns or default_columns(count))
    rows = math.ceil(count / cols)
    tile_h = max(1, round(tile_width * frame_height / frame_width))
    pad = max(4, tile_width // 40)
    label_font = max(10, round(tile_width * 0.05))
    label_h = label_font + 2 * max(3, round(label_font * 0.4))
    width = cols * tile_width + (cols + 1) * pad
    title_font = max(12, min(40, round(width / 60)), label_font + 2) if title else 0
    title_h = title_font + 2 * pad if title else 0
    tiles: list[Box] = []
    labels: list[Box] = []
    for i in range(count):
        r, c = divmod(i, cols)
        x0 = pad + c * (tile_width + pad)
        y0 = title_h + pad + r * (tile_h + label_h + pad)
        tiles.append((x0, y0, x0 + tile_width, y0 + tile_h))
        labels.append((x0, y0 + tile_h, x0 + tile_width, y0 + tile_h + label_h))
    height = title_h + pad + rows * (tile_h + label_h + pad)
    return SheetLayout(
        width=width,
        height=height,
        columns=cols,
        rows=rows,
        tile_width=tile_width,
        tile_height=tile_h,
        padding=pad,
        label_height=label_h,
        label_font_size=label_font,
        title_height=title_h,
        title_font_size=title_font,
        tiles=tuple(tiles),
        labels=tuple(labels),
        title=(0, 0, width, title_h) if title else None,
    )


def format_time(seconds: float) -> str:
    """``12.40s`` under a minute, ``1:02.40`` under an hour, ``1:02:03.40`` beyond."""
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{int(minutes)}:{secs:05.2f}"
    hours, minutes = divmod(minutes, 60)
    return f"{int(hours)}:{int(minutes):02d}:{secs:05.2f}"


def describe_video(info: VideoInfo) -> str:
    """One-line title for a video: ``clip.mp4 · 8.00s · 10 fps · 160x120 · h264``."""
    return (
        f"{Path(info.path).name} · {format_time(info.duration)} · {info.fps:.4g} fps · "
        f"{info.width}x{info.height} · {info.codec}"
    )


def _font(size: int) -> Any:
    """Pillow's bundled font at ``size`` px (the fixed bitmap font if Pillow lacks FreeType)."""
    try:
        return ImageFont.load_default(size=size)
    except (OSError, TypeError, ImportError):  # Pillow built without FreeType
        return ImageFont.load_default()


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Any, width: float) -> str:
    """``text`` cut with an ellipsis so that it fits in ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def contact_sheet(
    frames: FrameBatch,
    *,
    columns: int | None = None,
    tile_width: int = 320,
    title: str | None = None,
) -> Image.Image:
    """A grid of ``frames``, each labelled ``<timestamp>  #<index>``, with an optional title line.

    Frames are resized to ``tile_width`` (aspect kept) and laid out row by row in ``columns``
    columns (default: about square, :func:`default_columns`). See :func:`sheet_layout` for the
    geometry; :func:`describe_video` makes a title from a :class:`~vidagent.core.records.VideoInfo`.
    """
    count = len(frames)
    if count == 0 or frames.frames.ndim != 4:
        raise ConfigError(f"a contact sheet needs at least one (H, W, 3) frame, got {count}")
    frame_h, frame_w = int(frames.frames.shape[1]), int(frames.frames.shape[2])
    layout = sheet_layout(
        count, frame_w, frame_h, columns=columns, tile_width=tile_width, title=title is not None
    )
    sheet = Image.new("RGB", (layout.width, layout.height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    label_font = _font(layout.label_font_size)
    inset = max(4, layout.label_font_size // 2)
    size = (layout.tile_width, layout.tile_height)
    for i in range(count):
        tile = Image.fromarray(np.ascontiguousarray(frames.frames[i]), mode="RGB")
        if tile.size != size:
            tile = tile.resize(size, Image.Resampling.LANCZOS)
        x0, y0 = layout.tiles[i][:2]
        sheet.paste(tile, (x0, y0))
        lx0, ly0, lx1, ly1 = layout.labels[i]
        draw.rectangle((lx0, ly0, lx1 - 1, ly1 - 1), fill=LABEL_BACKGROUND)
        mid = (ly0 + ly1) / 2
        draw.text(
            (lx0 + inset, mid),
            format_time(float(frames.timestamps[i])),
            font=label_font,
            fill=LABEL_TEXT,
            anchor="lm",
        )
        draw.text(
            (lx1 - inset, mid),
            f"#{int(frames.indices[i])}",
            font=label_font,
            fill=INDEX_TEXT,
            anchor="rm",
        )
    if title is not None and layout.title is not None:
        title_font = _font(layout.title_font_size)
        tx0, ty0, tx1, ty1 = layout.title
        text = _fit(draw, title, title_font, tx1 - tx0 - 2 * layout.padding)
        draw.text(
            (tx0 + layout.padding, (ty0 + ty1) / 2 + layout.padding / 2),
            text,
            font=title_font,
            fill=TITLE_TEXT,
            anchor="lm",
        )
    return sheet


def video_contact_sheet(
    video: VideoSource | str | os.PathLike[str],
    n: int = 16,
    *,
    columns: int | None = None,
    tile_width: int = 320,
    title: bool = True,
) -> Image.Image:
    """A sheet of ``n`` frames sampled uniformly from ``video``, titled with its metadata.

    A path is decoded straight at ``tile_width`` (decode-time resize: no full-size frames in
    memory) and the title shows the file's native size; a source is used as is.
    """
    if isinstance(video, (str, os.PathLike)):
        info = probe_video(video, verify=False)
        with open_video(video, width=tile_width) as source:
            batch = source.get_frames(uniform_indices(source.info.num_frames, n))
    else:
        info = video.info
        batch = video.get_frames(uniform_indices(info.num_frames, n))
    return contact_sheet(
        batch, columns=columns, tile_width=tile_width, title=describe_video(info) if title else None
    )


def save_contact_sheet(image: Image.Image, path: str | os.PathLike[str]) -> Path:
    """Write ``image`` as PNG or JPEG (chosen by the extension), creating parent folders."""
    out = Path(path)
    fmt = SAVE_FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise ConfigError(
            f"{out}: cannot save a contact sheet as {out.suffix or 'a file without extension'!r}; "
            f"use one of {', '.join(SAVE_FORMATS)}"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "JPEG":
        image.convert("RGB").save(out, fmt, quality=90)
    else:
        image.save(out, fmt)
    return out
