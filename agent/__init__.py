"""vidagent's agent package: records, the perception store, timeline rendering, LLM layer, CLI."""

from agent.errors import (
    ConfigError,
    CorruptVideoError,
    EmptyVideoError,
    MissingDependencyError,
    NotAVideoError,
    NoVideoStreamError,
    StoreError,
    VidagentError,
    VideoError,
    VideoNotFoundError,
)
from agent.records import (
    ActionLabel,
    Caption,
    EmbeddingRef,
    Segment,
    Segmentation,
    Timeline,
    VideoInfo,
    segment_token,
)

__all__ = [
    "ActionLabel",
    "Caption",
    "ConfigError",
    "CorruptVideoError",
    "EmbeddingRef",
    "EmptyVideoError",
    "MissingDependencyError",
    "NoVideoStreamError",
    "NotAVideoError",
    "Segment",
    "Segmentation",
    "StoreError",
    "Timeline",
    "VidagentError",
    "VideoError",
    "VideoInfo",
    "VideoNotFoundError",
    "segment_token",
]
