"""Shot segmentation cached in the perception store: detection runs once per video and parameters.

``vidagent segments --shots``, the perception pipeline (``perceive --shots``, local or Ray) and
the API all call :func:`cached_shot_timeline`, so they share one store entry per (video content,
shot parameters): the key is the video's hash, :data:`SHOTS_TOOL`, :data:`SHOTS_VERSION` and the
parameters as :meth:`~vidagent.tools.segmenter.ShotParams.recorded` normalizes them (defaults
filled in, the threshold in force), so ``{}`` and ``{"max_seconds": 10}`` are the same entry.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidagent.core.records import Timeline
from vidagent.tools.segmenter import Progress, build_timeline, parse_shot_params

if TYPE_CHECKING:
    from vidagent.store.perception import PerceptionStore

SHOTS_TOOL = "segmenter.shots"
SHOTS_VERSION = "1"
"""Bump when shot detection changes its output for the same parameters (invalidates the cache)."""

__all__ = ["SHOTS_TOOL", "SHOTS_VERSION", "cached_shot_timeline"]


def cached_shot_timeline(
    video: str | os.PathLike[str],
    store: PerceptionStore,
    *,
    video_hash: str | None = None,
    progress: Progress | None = None,
    **params: Any,
) -> Timeline:
    """``video``'s shot timeline (``params``: :class:`~vidagent.tools.segmenter.ShotParams` names),
    from the store or detected now and stored. ``progress(done, total)`` frames, only when
    detection runs. The timeline's ``video`` names this path and hash (a cached record may come
    from a copy of the video elsewhere)."""
    path = Path(video)
    recorded = parse_shot_params(
        **params
    ).recorded()  # a bad value is a ConfigError before any work
    digest = video_hash or store.video_hash(path)

    def compute() -> tuple[dict[str, Any], None]:
        timeline = build_timeline(path, shots=True, progress=progress, **params)
        return timeline.model_dump(mode="json"), None

    stored = store.get_or_compute(digest, SHOTS_TOOL, SHOTS_VERSION, recorded, compute)
    timeline = Timeline.model_validate(stored.value)
    info = timeline.video.model_copy(update={"path": str(path), "content_hash": digest})
    return timeline.model_copy(update={"video": info})
