"""Settings of the web app and the JSON shapes of its REST API (pydantic, documented in OpenAPI)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vidagent.api.chat import ChatSettings


class ServeConfig(ChatSettings):
    """What ``vidagent serve`` passes to :func:`vidagent.web.create_app`: the chat settings of
    every session (:class:`~vidagent.api.ChatSettings`) and the web server's own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path = Field(description="Uploads and their metadata live here, nowhere else")
    videos_dir: Path | None = Field(default=None, description="Read-only folder of videos")
    api_key: str | None = Field(default=None, description="Required on every /api route if set")
    max_upload_mb: float = Field(default=500.0, gt=0)
    host: str = Field(
        default="127.0.0.1",
        description="The address the server listens on; a request's Host header must name it, "
        "a loopback name, or one of allowed_hosts (vidagent.web.guard)",
    )
    allowed_hosts: tuple[str, ...] = Field(
        default=(), description="More host names accepted in the Host header ('*': any)"
    )
    max_sessions: int = Field(
        default=64,
        ge=1,
        description="Chat sessions kept at once: a new one replaces the least recently used idle "
        "one; when all are answering, creating one is refused (503)",
    )
    session_idle_s: float = Field(
        default=3600.0, gt=0, description="A chat session unused this long is forgotten"
    )

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerInfo(Out):
    """What the page needs before anything else (no API key needed)."""

    auth_required: bool
    max_upload_mb: float
    version: str


class VideoOut(Out):
    id: str = Field(description="Stable id: content hash of an upload, or of a folder file's name")
    name: str = Field(description="Display name (an upload's sanitized file name)")
    source: Literal["upload", "folder"]
    size_bytes: int
    media_url: str = Field(description="GET it for the bytes (HTTP Range supported)")
    timeline_status: TimelineStatus


class VideoDetail(VideoOut):
    duration: float
    fps: float
    num_frames: int
    width: int
    height: int
    codec: str


TimelineStatus = Literal["idle", "pending", "running", "done", "error"]


class SegmentOut(Out):
    index: int
    token: str = Field(description="The segment token the chat cites, e.g. <seg_3>")
    start: float
    end: float
    caption: str
    actions: list[str]


class TimelineOut(Out):
    video_id: str
    status: TimelineStatus = Field(description="idle: not asked for; done: segments are filled in")
    error: str | None = None
    elapsed_s: float | None = Field(default=None, description="Seconds since perception started")
    steps_done: int = Field(default=0, description="Perception steps (segments x tools) done")
    steps_total: int = Field(default=0, description="Steps to compute (0: not planned yet)")
    duration: float | None = None
    segments: list[SegmentOut] = Field(default_factory=list)


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    video_id: str


class SessionOut(Out):
    id: str
    video_id: str
    turns: int = Field(description="Questions answered so far")


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=4000)


VideoOut.model_rebuild()
VideoDetail.model_rebuild()
