"""The perception tool protocol and the records every tool shares.

* :class:`PerceptionTool` is the protocol the pipeline (:mod:`vidagent.tools.perceive`) drives: a
  name, a version and typed params that go into the cache key, a lazy :meth:`~PerceptionTool.setup`,
  and
  :meth:`~PerceptionTool.run` on the frames of a list of segments (possibly from several videos).
* :class:`ToolParams` is the base of every tool's parameters; :class:`ToolOutput` what a tool
  computed for a list of segments.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vidagent.tools.video import FrameBatch


class ToolParams(BaseModel):
    """Base of every tool's parameters: a typo is an error, and params are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    RUNTIME_FIELDS: ClassVar[frozenset[str]] = frozenset({"batch_size", "device", "dtype"})
    """Fields that change how fast a result is computed, not what it is: not part of cache keys."""

    frames_per_segment: int = Field(default=1, ge=1, le=64, description="Frames per segment")

    def cache_fields(self) -> dict[str, Any]:
        """The parameters that change the output (JSON types), for the store key."""
        return self.model_dump(mode="json", exclude=set(self.RUNTIME_FIELDS))


@dataclass
class ToolOutput:
    """What a tool computed for a list of segments, in order.

    ``items`` holds one JSON-able entry per segment, and every array in ``arrays`` has one row per
    segment, so the pipeline can hand each video its rows of a batch that spanned several.
    """

    items: list[Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, arr in self.arrays.items():
            if arr.shape[0] != len(self.items):
                n = len(self.items)
                raise ValueError(f"array {name!r} has {arr.shape[0]} rows for {n} items")


@runtime_checkable
class PerceptionTool(Protocol):
    """A perception tool as the pipeline sees it.

    ``name`` + ``version`` + :meth:`cache_params` make the store key (with the video's hash and its
    segmentation), so a cached result is reused only when nothing that changes it has changed.
    """

    name: str
    version: str

    @property
    def params(self) -> ToolParams:
        """The tool's settings (``frames_per_segment`` says how many frames a segment gets)."""
        ...

    def cache_params(self, hasher: Callable[[Path], str] | None = None) -> dict[str, Any]:
        """Everything that changes the output, computed without loading the model. ``hasher``
        hashes a file (the store's memoized ``video_hash``) to fingerprint local checkpoints."""
        ...

    def setup(self) -> None:
        """Load the model (idempotent; :meth:`run` calls it lazily)."""
        ...

    def run(self, frames: Sequence[FrameBatch]) -> ToolOutput:
        """Process the frames of each segment (``frames[i]`` are segment i's frames)."""
        ...

    def summary(self, output: ToolOutput) -> dict[str, Any]:
        """JSON fields stored next to ``items`` for one video's merged output."""
        ...

    def annotate(self, segments: Sequence[Any], value: dict[str, Any], key: str) -> list[Any]:
        """Copies of ``segments`` with this tool's stored ``value`` (store ``key``) filled in."""
        ...
