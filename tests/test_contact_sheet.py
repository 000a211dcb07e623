"""Contact sheets of real decoded frames: grid geometry, tile order, labels, title, saving."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vidagent.core.errors import ConfigError
from vidagent.testing.synth import SyntheticVideo, read_frame_index
from vidagent.tools.contact_sheet import (
    BACKGROUND,
    LABEL_BACKGROUND,
    contact_sheet,
    describe_video,
    format_time,
    save_contact_sheet,
    sheet_layout,
    video_contact_sheet,
)
from vidagent.tools.sampling import uniform_indices
from vidagent.tools.video import FrameBatch, open_video


def _frames(video: SyntheticVideo, n: int) -> FrameBatch:
    with open_video(video.path) as source:
        return source.get_frames(uniform_indices(source.info.num_frames, n))


def _region(image: Image.Image, box: tuple[int, int, int, int]) -> np.ndarray:
    return np.asarray(image.crop(box))


def test_sheet_size_matches_the_grid(h264_video: SyntheticVideo) -> None:
    batch = _frames(h264_video, 7)
    sheet = contact_sheet(batch, columns=3, tile_width=200)
    layout = sheet_layout(7, 160, 120, columns=3, tile_width=200)
    assert (layout.columns, layout.rows) == (3, 3)
    assert (layout.tile_width, layout.tile_height) == (200, 150)  # aspect kept
    pad = layout.padding
    assert sheet.size == (layout.width, layout.height)
    assert layout.width == 3 * 200 + 4 * pad
    assert layout.height == pad + 3 * (150 + layout.label_height + pad)
    assert sheet.mode == "RGB"


def test_tiles_hold_the_frames_in_order(h264_video: SyntheticVideo) -> None:
    batch = _frames(h264_video, 6)
    sheet = contact_sheet(batch, columns=4, tile_width=160)
    layout = sheet_layout(6, 160, 120, columns=4, tile_width=160)
    shown = [read_frame_index(_region(sheet, box)) for box in layout.tiles]
    assert shown == batch.indices.tolist()
    # Grid cells past the last frame stay background.
    x0, y0 = layout.tiles[5][2] + layout.padding, layout.tiles[5][1]
    empty = _region(sheet, (x0, y0, x0 + layout.tile_width, y0 + layout.tile_height))
    assert (empty == BACKGROUND).all()


def test_labels_are_drawn(vp9_video: SyntheticVideo) -> None:
    batch = _frames(vp9_video, 4)
    sheet = contact_sheet(batch, tile_width=240)
    layout = sheet_layout(4, 160, 120, tile_width=240)
    for box in layout.labels:
        band = _region(sheet, box).reshape(-1, 3)
        colours = {tuple(c) for c in band}
        assert LABEL_BACKGROUND in colours
        assert len(colours) > 10  # anti-aliased text, not a flat band
        assert band.max() > 200  # light text on the dark band
        # Text on both sides: the timestamp on the left, the frame index on the right.
        pixels = _region(sheet, box)
        half = pixels.shape[1] // 2
        assert pixels[:, :half].max() > 200 and pixels[:, half:].max() > 120


def test_title_band(h264_video: SyntheticVideo) -> None:
    batch = _frames(h264_video, 4)
    with open_video(h264_video.path) as source:
        title = describe_video(source.info)
    assert title == "cut.mp4 · 8.00s · 10 fps · 160x120 · h264"
    plain = contact_sheet(batch, tile_width=160)
    titled = contact_sheet(batch, tile_width=160, title=title)
    layout = sheet_layout(4, 160, 120, tile_width=160, title=True)
    assert layout.title is not None and layout.title_height > 0
    assert titled.size == (plain.width, plain.height + layout.title_height)
    band = _region(titled, layout.title)
    assert band.max() > 200 and len({tuple(c) for c in band.reshape(-1, 3)}) > 10


def test_video_contact_sheet_from_a_path(vp9_video: SyntheticVideo) -> None:
    sheet = video_contact_sheet(vp9_video.path, 9, tile_width=120)
    layout = sheet_layout(9, 160, 120, tile_width=120, title=True)
    assert sheet.size == (layout.width, layout.height)
    expected = uniform_indices(vp9_video.num_frames, 9).tolist()
    assert [read_frame_index(_region(sheet, box)) for box in layout.tiles] == expected


def test_save_png_and_jpeg(h264_video: SyntheticVideo, tmp_path: Path) -> None:
    sheet = contact_sheet(_frames(h264_video, 4), tile_width=128, title="clip")
    png = save_contact_sheet(sheet, tmp_path / "new" / "dir" / "sheet.png")
    with Image.open(png) as img:
        assert img.format == "PNG" and img.size == sheet.size
        assert np.array_equal(np.asarray(img.convert("RGB")), np.asarray(sheet))
    jpg = save_contact_sheet(sheet, tmp_path / "sheet.JPG")
    with Image.open(jpg) as img:
        assert img.format == "JPEG" and img.size == sheet.size


@pytest.mark.parametrize("name", ["sheet.gif", "sheet", "sheet.png.txt"])
def test_unsupported_extension_is_a_config_error(
    h264_video: SyntheticVideo, tmp_path: Path, name: str
) -> None:
    sheet = contact_sheet(_frames(h264_video, 1), tile_width=64)
    with pytest.raises(ConfigError, match=r"\.png"):
        save_contact_sheet(sheet, tmp_path / name)
    assert not (tmp_path / name).exists()


def test_bad_inputs_are_config_errors(h264_video: SyntheticVideo) -> None:
    batch = _frames(h264_video, 2)
    empty = FrameBatch(batch.frames[:0], batch.indices[:0], batch.timestamps[:0])
    with pytest.raises(ConfigError, match="at least one"):
        contact_sheet(empty)
    with pytest.raises(ConfigError, match="columns"):
        contact_sheet(batch, columns=0)
    with pytest.raises(ConfigError, match="tile_width"):
        contact_sheet(batch, tile_width=8)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0.00s"),
        (12.4, "12.40s"),
        (59.994, "59.99s"),
        (62.4, "1:02.40"),
        (3723.4, "1:02:03.40"),
    ],
)
def test_format_time(seconds: float, text: str) -> None:
    assert format_time(seconds) == text
