"""Which files a user means by "these videos", and keeping native decoder noise off the terminal.

:func:`find_videos` turns named files plus an optional folder (searched recursively, video
suffixes only, hidden files skipped) into one ordered list without repeats.
:func:`quiet_native_stderr` silences what FFmpeg and decord write straight to file descriptor 2
from native code: its content is already in the :class:`~vidagent.core.errors.VideoError` raised,
and on a terminal it reads like a crash. Both are used by the API, the web app and the CLI alike.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from vidagent.core.errors import ConfigError
from vidagent.tools.video import VIDEO_SUFFIXES

__all__ = ["find_videos", "quiet_native_stderr", "videos_in"]


def videos_in(folder: Path) -> list[Path]:
    """Every video file under ``folder`` (recursively, sorted; hidden files skipped)."""
    if not folder.is_dir():
        raise ConfigError(f"{folder}: not a directory")
    found = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith(".")
    )
    if not found:
        suffixes = " ".join(sorted(VIDEO_SUFFIXES))
        raise ConfigError(f"{folder}: no video files ({suffixes})")
    return found


def find_videos(videos: Sequence[Path] = (), folder: Path | None = None) -> list[Path]:
    """The videos named, then every video file under ``folder``; each once, in that order."""
    found = list(videos)
    if folder is not None:
        found.extend(videos_in(folder))
    if not found:
        raise ConfigError("no videos given: name video files or a folder of videos")
    return list(dict.fromkeys(found))


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null while the block runs (not with ``VIDAGENT_DEBUG``).

    Python's own ``sys.stderr`` object is flushed first; a caller that wants to keep writing to
    the terminal meanwhile duplicates fd 2 before entering (see ``vidagent.cli.progress``).
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
