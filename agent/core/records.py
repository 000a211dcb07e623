"""Typed records for what flows through vidagent: video metadata, segments, timelines.

They cross process and file boundaries (timeline JSON files, the perception store, LLM prompts), so
they are pydantic models with ``extra="forbid"``: a typo or a stale field is an error, not silently
dropped. Arrays (frames, embeddings) never live inside these models; a segment points at its
embedding through :class:`EmbeddingRef`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SEGMENT_TOKEN_FORMAT = "<seg_{index}>"


def segment_token(index: int) -> str:
    """The segment token an LLM sees for segment ``index`` (``<seg_3>``)."""
    return SEGMENT_TOKEN_FORMAT.format(index=index)


class Record(BaseModel):
    """Base of all records: unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid")


class ChatMessage(Record):
    """One chat turn (prompt files render to these; the LLM layer sends them)."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str


class VideoInfo(Record):
    """Metadata of one video file, as read by the decoder that will decode it."""

    path: str
    content_hash: str | None = Field(
        default=None, description="Hash of the file's bytes (blake2b-128 hex); None if not computed"
    )
    fps: float = Field(gt=0)
    num_frames: int = Field(ge=1)
    duration: float = Field(gt=0, description="Seconds: num_frames / fps")
    width: int = Field(ge=1)
    height: int = Field(ge=1)
    codec: str
    backend: Literal["decord", "pyav"]


class ActionLabel(Record):
    """One (verb, noun) action hypothesis for a segment."""

    verb: str
    noun: str
    score: float = Field(ge=0.0, le=1.0, description="Joint confidence")
    verb_score: float | None = None
    noun_score: float | None = None

    @property
    def text(self) -> str:
        return f"{self.verb} {self.noun}"


class Caption(Record):
    """A caption of a segment and the model that wrote it."""

    text: str
    model: str = ""


class EmbeddingRef(Record):
    """Where a segment's visual embedding lives: row ``row`` of the array stored under ``key``."""

    key: str
    row: int = Field(ge=0)
    dim: int = Field(ge=1)
    model: str = ""


class Segment(Record):
    """A span of the video with what perception found in it.

    Frames are ``[start_frame, end_frame)`` (end exclusive); times are seconds, end exclusive too.
    """

    index: int = Field(ge=0)
    start: float = Field(ge=0.0)
    end: float
    start_frame: int = Field(ge=0)
    end_frame: int
    captions: list[Caption] = Field(default_factory=list)
    actions: list[ActionLabel] = Field(default_factory=list)
    embedding: EmbeddingRef | None = None

    @model_validator(mode="after")
    def _check_span(self) -> Segment:
        if self.end <= self.start:
            raise ValueError(
                f"segment {self.index}: end {self.end} must be after start {self.start}"
            )
        if self.end_frame <= self.start_frame:
            raise ValueError(
                f"segment {self.index}: end_frame {self.end_frame} must be after "
                f"start_frame {self.start_frame}"
            )
        return self

    @property
    def token(self) -> str:
        return segment_token(self.index)

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def num_frames(self) -> int:
        return self.end_frame - self.start_frame


class Segmentation(Record):
    """How a timeline was cut: method and its parameters (recorded for reproducibility)."""

    method: Literal["fixed", "shots"]
    params: dict[str, float | int | str | bool] = Field(default_factory=dict)


class Timeline(Record):
    """A video cut into consecutive segments: the representation the agent reasons over."""

    version: Literal[1] = 1
    video: VideoInfo
    segmentation: Segmentation
    segments: list[Segment]

    @model_validator(mode="after")
    def _check_segments(self) -> Timeline:
        for i, seg in enumerate(self.segments):
            if seg.index != i:
                raise ValueError(f"segment at position {i} has index {seg.index}")
            if i and seg.start_frame < self.segments[i - 1].end_frame:
                raise ValueError(f"segment {i} overlaps segment {i - 1}")
        return self

    def segment_at(self, seconds: float) -> Segment:
        """The segment containing time ``seconds`` (clamped to the video)."""
        if not self.segments:
            raise ValueError("timeline has no segments")
        for seg in self.segments:
            if seconds < seg.end:
                return seg
        return self.segments[-1]

    def by_token(self, token: str) -> Segment:
        """The segment named by a token such as ``<seg_3>``; ``KeyError`` if there is none."""
        for seg in self.segments:
            if seg.token == token:
                return seg
        raise KeyError(token)
