"""Perceive videos from a :class:`~vidagent.api.config.PerceptionConfig`: build the tools, open the
store, run the pipeline, report progress through a callback.

:func:`perceive` gives one video's timeline; :func:`perceive_many` writes one timeline JSON per
video (in this process, or on a Ray cluster with ``ray=``) and returns the summary, a failed video
never stopping the others. Both take ``on_progress``, called with each
:class:`~vidagent.tools.perceive.ProgressEvent` (the CLI draws its bar from them). While they run,
what FFmpeg/decord write to file descriptor 2 is silenced (it is in the raised error already;
``VIDAGENT_DEBUG=1`` keeps it).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidagent.api.config import PerceptionConfig, validated
from vidagent.core.errors import VideoNotFoundError
from vidagent.core.records import Timeline
from vidagent.tools.models import PerceptionTool
from vidagent.tools.perceive_records import PerceiveSummary, Progress
from vidagent.tools.video_files import quiet_native_stderr

if TYPE_CHECKING:
    from vidagent.store.perception import PerceptionStore
    from vidagent.tools.perceive_ray import RayPlan
    from vidagent.tools.visual_embedder import SegmentEmbedder

__all__ = [
    "PerceivedVideos",
    "build_tools",
    "open_store",
    "perceive",
    "perceive_many",
    "perceive_videos",
]


def open_store(store: PerceptionStore | None = None) -> PerceptionStore:
    """``store``, or the perception store of the settings (``$VIDAGENT_HOME/store``)."""
    if store is not None:
        return store
    from vidagent.core.settings import load_settings
    from vidagent.store.perception import PerceptionStore

    return PerceptionStore(load_settings().store_dir)


def build_tools(
    config: PerceptionConfig, store: PerceptionStore | None = None
) -> list[PerceptionTool]:
    """The tools ``config`` asks for, in pipeline order (none loads a model yet); ``store`` is
    where the action recognizer caches its label embeddings."""
    from vidagent.tools.actions import ActionParams, ActionRecognizer
    from vidagent.tools.captioner import (
        Captioner,
        CaptionerParams,
        ServedCaptioner,
        ServedCaptionerParams,
    )
    from vidagent.tools.visual_embedder import EmbedderParams, SegmentEmbedder

    tools: list[PerceptionTool] = []
    run: dict[str, Any] = {"device": config.device, "dtype": config.dtype}
    if config.batch_size is not None:
        run["batch_size"] = config.batch_size
    if config.captions:
        caption: dict[str, Any] = {
            "model": config.captioner,
            "frames_per_segment": config.caption_frames,
        }
        if config.caption_prompt is not None:
            caption["prompt"] = config.caption_prompt
        if config.captioner_url:
            served = validated(
                ServedCaptionerParams,
                **caption,
                base_url=config.captioner_url,
                max_tokens=config.caption_max_tokens,
            )
            tools.append(ServedCaptioner(served))
        else:
            local = validated(
                CaptionerParams, **caption, max_new_tokens=config.caption_max_tokens, **run
            )
            tools.append(Captioner(local))
    visual = {"frames_per_segment": config.frames_per_segment, **run}
    if config.embeddings:
        tools.append(SegmentEmbedder(validated(EmbedderParams, model=config.embedder, **visual)))
    if config.actions:
        head = {"head": config.action_head} if config.action_head is not None else {}
        taxonomy = {"taxonomy": config.taxonomy} if config.taxonomy is not None else {}
        params = validated(
            ActionParams,
            model=config.actions_model,
            top_k=config.top_k,
            **taxonomy,
            **head,
            **visual,
        )
        tools.append(ActionRecognizer(params, store=store))
    return tools


@dataclass
class PerceivedVideos:
    """Timelines of several videos (in the order given) and the tools that made them, by name."""

    timelines: list[Timeline]
    tools: dict[str, PerceptionTool]

    @property
    def query_embedder(self) -> SegmentEmbedder | None:
        """The segment embedder (its text tower embeds queries into the segments' space)."""
        from vidagent.tools.visual_embedder import SegmentEmbedder

        embedder = self.tools.get("embedder")
        return embedder if isinstance(embedder, SegmentEmbedder) else None

    @property
    def captioner(self) -> PerceptionTool | None:
        """The captioner (in process or served), for finer captions on demand."""
        return self.tools.get("captioner") or self.tools.get("captioner.served")


def perceive_videos(
    videos: Sequence[str | os.PathLike[str]],
    config: PerceptionConfig | None = None,
    *,
    store: PerceptionStore | None = None,
    on_progress: Progress | None = None,
) -> PerceivedVideos:
    """Every video's timeline, perceived with one set of tools (models load once; cached)."""
    config = config or PerceptionConfig()
    store = open_store(store)
    tools = build_tools(config, store)
    paths = [Path(v) for v in videos]
    for path in paths:
        if not path.is_file():
            raise VideoNotFoundError(path, "no such file")
    from vidagent.tools.perceive import perceive as run_pipeline

    with quiet_native_stderr():
        timelines = [
            run_pipeline(
                path, tools=tools, store=store, progress=on_progress, **config.segmentation()
            )
            for path in paths
        ]
    return PerceivedVideos(timelines, {t.name: t for t in tools})


def perceive(
    video: str | os.PathLike[str],
    config: PerceptionConfig | None = None,
    store: PerceptionStore | None = None,
    on_progress: Progress | None = None,
) -> Timeline:
    """``video``'s timeline: segments with captions, action labels and embeddings (cached by the
    video's content in ``store``, default the settings' store)."""
    return perceive_videos([video], config, store=store, on_progress=on_progress).timelines[0]


def perceive_many(
    videos: Sequence[str | os.PathLike[str]],
    config: PerceptionConfig | None = None,
    *,
    out_dir: str | os.PathLike[str] | None = None,
    store: PerceptionStore | None = None,
    on_progress: Progress | None = None,
    ray: RayPlan | None = None,
    address: str | None = None,
) -> PerceiveSummary:
    """Perceive ``videos``, writing ``out_dir/<name>.json`` each; a video that fails is recorded
    in the summary and the others go on. ``ray``: run on a Ray cluster (``address``: auto,
    HOST:PORT or ray://HOST:PORT; None starts a local one), each actor building the same tools."""
    config = config or PerceptionConfig()
    store = open_store(store)
    tools = build_tools(config, store)  # validates the options before any video is touched
    common: dict[str, Any] = {"store": store, "out_dir": out_dir, "progress": on_progress}
    with quiet_native_stderr():
        if ray is None:
            from vidagent.tools.perceive import perceive_many as run_local

            return run_local(videos, tools=tools, **common, **config.segmentation())
        from vidagent.tools.perceive_ray import perceive_ray

        make_tools = functools.partial(build_tools, config)
        return perceive_ray(
            videos, make_tools=make_tools, plan=ray, address=address, **common,
            **config.segmentation(),
        )  # fmt: skip
