"""The videos the web app offers: uploads kept in its data dir, plus an optional read-only folder.

An upload is streamed to a temporary file inside ``data_dir/uploads`` while its size is checked, so
a too-large upload is refused as soon as it passes the limit; it is then opened with
:mod:`vidagent.tools.video` (a file no decoder understands is removed and refused with the
decoder's reason) and renamed to ``<sha256[:16]><ext>``. The client's file name is only a display
name: sanitized and stored next to it in a JSON sidecar, never used as a path.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from vidagent.core.errors import CorruptVideoError, VidagentError, VideoError
from vidagent.tools.video import VIDEO_SUFFIXES


class UploadError(VidagentError):
    """An upload is refused; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class UploadSource(Protocol):
    """An upload being received: its client file name (once known) and its bytes."""

    filename: str | None

    def chunks(self) -> AsyncIterator[bytes]: ...


@dataclass(frozen=True)
class StoredVideo:
    id: str
    name: str
    path: Path
    source: Literal["upload", "folder"]

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size


def display_name(client_name: str | None) -> str:
    """The last component of a client's file name, without control characters (max 200)."""
    name = (client_name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip().lstrip(".")
    return name[:200] or "video"


def _suffix(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return suffix if suffix in VIDEO_SUFFIXES else ".mp4"


class VideoLibrary:
    """Lists, stores and finds videos by id; ids map to files this object chose, never to a path a
    client sent."""

    def __init__(self, data_dir: Path, videos_dir: Path | None = None) -> None:
        self.uploads = data_dir / "uploads"
        self.tmp = data_dir / "tmp"
        self.videos_dir = videos_dir
        self._lock = threading.Lock()

    def setup(self) -> None:
        self.uploads.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        for leftover in self.tmp.iterdir():  # an upload cut off by a crash
            with contextlib.suppress(OSError):
                leftover.unlink()

    def list(self) -> list[StoredVideo]:
        videos: list[StoredVideo] = []
        for meta in sorted(self.uploads.glob("*.json"), key=lambda p: p.stat().st_mtime):
            with contextlib.suppress(OSError, ValueError, KeyError):
                info = json.loads(meta.read_text(encoding="utf-8"))
                path = self.uploads / info["file"]
                if path.parent == self.uploads and path.is_file():
                    videos.append(StoredVideo(meta.stem, info["name"], path, "upload"))
        if self.videos_dir is not None and self.videos_dir.is_dir():
            for path in sorted(self.videos_dir.iterdir()):
                if path.suffix.lower() in VIDEO_SUFFIXES and path.is_file():
                    digest = hashlib.sha256(path.name.encode()).hexdigest()[:15]
                    videos.append(StoredVideo(f"f{digest}", path.name, path, "folder"))
        return videos

    def get(self, video_id: str) -> StoredVideo | None:
        return next((v for v in self.list() if v.id == video_id), None)

    async def store_upload(self, upload: UploadSource, limit_mb: float) -> StoredVideo:
        """Stream the upload to disk (at most ``limit_mb`` MiB), check it is a video, keep it."""
        import anyio

        limit = int(limit_mb * 2**20)
        tmp = self.tmp / f"{uuid.uuid4().hex}.part"
        digest = hashlib.sha256()
        size = 0
        try:
            with tmp.open("wb") as out:
                async for chunk in upload.chunks():
                    size += len(chunk)
                    if size > limit:
                        raise UploadError(
                            413,
                            f"{display_name(upload.filename)}: too large; "
                            f"the limit is {limit_mb:g} MB",
                        )
                    digest.update(chunk)
                    out.write(chunk)
            shown = display_name(upload.filename)
            if size == 0:
                raise UploadError(400, f"{shown}: the file is empty")
            await anyio.to_thread.run_sync(_check_video, tmp, shown)
            return self._keep(tmp, shown, digest.hexdigest()[:16])
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def _keep(self, tmp: Path, name: str, video_id: str) -> StoredVideo:
        with self._lock:
            path = self.uploads / f"{video_id}{_suffix(name)}"
            existing = self.get(video_id)
            if existing is not None:  # the same bytes again: keep one copy, the newest name
                path = existing.path
            else:
                os.replace(tmp, path)
            meta = self.uploads / f"{video_id}.json"
            meta.write_text(json.dumps({"name": name, "file": path.name}), encoding="utf-8")
            return StoredVideo(video_id, name, path, "upload")


def _check_video(path: Path, name: str) -> None:
    from vidagent.tools.video import probe_video
    from vidagent.tools.video_files import quiet_native_stderr

    try:
        with quiet_native_stderr():
            probe_video(path, verify=True)
    except VideoError as err:
        status = 400 if isinstance(err, CorruptVideoError) else 415
        cause = err.cause.replace(str(path), name)  # never show the server's paths
        raise UploadError(status, f"{name}: not a usable video: {cause}") from None
