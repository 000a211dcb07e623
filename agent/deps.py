"""Build what a task or the chat needs from command-line options: the LLM client, the perception
tools and store, the example bank, the text embedder, and the perceived timeline(s).

The one place that wires dependencies for ``ask`` / ``anticipate`` / ``localize`` / ``chat`` /
``serve`` / ``eval run --videos``. Bad input (missing or broken video, missing bank folder, an LLM
that cannot be reached) fails before any perception model loads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import ConfigError
from agent.tasks.context import DEFAULT_LLM_MODEL


@dataclass
class Deps:
    """Everything a task needs, built from CLI options."""

    timeline: Any
    store: Any
    llm: Any
    bank: Any
    query_embedder: Any
    text_embedder: Any
    timelines: dict[str, Any] = field(default_factory=dict)
    """Every perceived video by name (a folder's: relative path); ``timeline`` is the first."""
    captioner: Any = None
    """The perception captioner (for the chat's finer captions on demand)."""


def build_llm(urls: list[str] | None, model: str, cache_dir: Path | None = None) -> Any:
    """The LLM client. Without URLs the model loads in process: check it is reachable first, so a
    machine without hub access gets one line naming the model and how to use a local copy."""
    from agent.llm.config import LLMConfig, build_backend, resolve_backend_name

    served = None if model == DEFAULT_LLM_MODEL else model  # else: the server's first model
    config = LLMConfig(
        urls=list(urls or []),
        model=served if urls else model,
        hf_model=None if urls else model,
        cache_dir=cache_dir,
    )
    if resolve_backend_name(config) != "openai":
        check_model_available(model)
    return build_backend(config)


def check_model_available(model: str) -> None:
    """Raise ``ModelLoadError`` (one line) unless ``model``'s config can be loaded."""
    from transformers import AutoConfig

    from tools.models import load_pretrained

    load_pretrained(AutoConfig.from_pretrained, model)


def perceive_videos(
    videos: list[Path],
    *,
    captioner: str,
    captioner_url: str | None,
    embedder: str,
    taxonomy: Path | None,
    seconds: float,
    device: str,
    store: Any,
    progress: bool | Callable[[Any], None] = False,
) -> tuple[list[Any], dict[str, Any]]:
    """``(timelines, perception tools by name)`` of ``videos`` (cached in the store; models load
    once): the tools include ``embedder`` (segment embeddings, also for text queries) and
    ``captioner`` or ``captioner.served``. ``progress``: True draws a bar on stderr while they
    run; a function is given the pipeline's progress events instead."""
    from agent.cli import quiet_native_stderr
    from agent.perceive_cli import build_tools, progress_bar, stderr_console
    from tools.perceive import perceive

    tools = build_tools(
        store=store,
        captions=True,
        actions=True,
        embeddings=True,
        captioner=captioner,
        captioner_url=captioner_url,
        caption_prompt=None,
        caption_frames=1,
        caption_max_tokens=40,
        action_model=embedder,
        taxonomy=taxonomy,
        action_head=None,
        top_k=3,
        embedder=embedder,
        frames_per_segment=4,
        batch_size=None,
        device=device,
        dtype="auto",
    )
    for video in videos:
        if not video.is_file():
            from agent.errors import VideoNotFoundError

            raise VideoNotFoundError(video, "no such file")
    timelines = []
    with contextlib.ExitStack() as stack:
        on_progress = progress if callable(progress) else None
        if progress is True:
            err = stack.enter_context(stderr_console())
            on_progress = stack.enter_context(progress_bar(len(videos), err))
        else:
            stack.enter_context(quiet_native_stderr())
        for video in videos:
            timeline = perceive(
                video, tools=tools, store=store, seconds=seconds, progress=on_progress
            )
            timelines.append(timeline)
    return timelines, {t.name: t for t in tools}


def perceive_video(video: Path, **options: Any) -> tuple[Any, Any]:
    """``(timeline, segment embedder)`` of one video; options of :func:`perceive_videos`."""
    timelines, tools = perceive_videos([video], **options)
    return timelines[0], tools["embedder"]


def captioner_of(tools: dict[str, Any]) -> Any:
    """The captioner among :func:`perceive_videos`' tools (in process or served), or None."""
    return tools.get("captioner") or tools.get("captioner.served")


@dataclass
class SharedDeps:
    """What every video of a session shares: the task LLM client, the perception store, the text
    embedder and the example bank (None: no examples)."""

    llm: Any
    store: Any
    text_embedder: Any
    bank: Any


def build_shared(llm_url: list[str] | None, llm_model: str, bank: Path | None) -> SharedDeps:
    """The LLM client (a missing one fails here, before perception), the store of the settings,
    the MiniLM text embedder and the bank loaded with it."""
    from agent.retrieval import ExampleBank, SentenceTransformerEmbedder
    from agent.settings import load_settings
    from agent.store import PerceptionStore

    if bank is not None and not bank.is_dir():
        raise ConfigError(f"--bank {bank}: not a directory")
    llm = build_llm(llm_url, llm_model)
    store = PerceptionStore(load_settings().store_dir)
    text_embedder = SentenceTransformerEmbedder()
    example_bank = None if bank is None else ExampleBank.load(bank, text_embedder)
    return SharedDeps(llm, store, text_embedder, example_bank)


def build_deps(
    video: Path,
    *,
    llm_url: list[str] | None,
    llm_model: str,
    bank: Path | None,
    captioner: str,
    captioner_url: str | None,
    embedder: str,
    taxonomy: Path | None,
    seconds: float,
    device: str,
    folder: bool = False,
) -> Deps:
    """Probe the video (``folder``: or every video under a folder), load the LLM, the example
    bank and the text embedder, then perceive (cached): bad input fails before any model loads."""
    from agent.cli import quiet_native_stderr
    from agent.perceive_cli import find_videos
    from tools.video import probe_video

    videos = find_videos(None, video) if folder and video.is_dir() else [video]
    with quiet_native_stderr():  # a missing or broken video is the first thing to report
        for path in videos:
            probe_video(path, verify=True)
    shared = build_shared(llm_url, llm_model, bank)
    timelines, tools = perceive_videos(
        videos,
        captioner=captioner,
        captioner_url=captioner_url,
        embedder=embedder,
        taxonomy=taxonomy,
        seconds=seconds,
        device=device,
        store=shared.store,
        progress=True,
    )
    names = [str(p.relative_to(video)) if p != video else p.name for p in videos]
    return Deps(
        timelines[0],
        shared.store,
        shared.llm,
        shared.bank,
        tools["embedder"],
        shared.text_embedder,
        timelines=dict(zip(names, timelines, strict=True)),
        captioner=captioner_of(tools),
    )
