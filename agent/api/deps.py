"""Wire what a task or the chat needs: the LLM client, the perception store, the example bank, the
text embedder and the perceived timeline(s).

The one place that builds these for ``ask`` / ``anticipate`` / ``localize`` / ``chat`` /
``serve`` (through :mod:`vidagent.api.tasks`, :mod:`vidagent.api.chat` and the web backend). Bad
input (a missing or broken video, a missing bank folder, an LLM that cannot be reached) fails
before any perception model loads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vidagent.api.config import LLMSettings, PerceptionConfig, validated
from vidagent.api.perception import open_store, perceive_videos
from vidagent.core.errors import ConfigError
from vidagent.core.records import Timeline
from vidagent.llm.backend import LLMClient
from vidagent.tools.perceive_records import Progress
from vidagent.tools.video_files import quiet_native_stderr, videos_in

if TYPE_CHECKING:
    from vidagent.retrieval import ExampleBank, TextEmbedder
    from vidagent.store.perception import PerceptionStore
    from vidagent.tasks.steps import QueryEmbedder
    from vidagent.tools.models import PerceptionTool

__all__ = [
    "Deps",
    "SharedDeps",
    "build_deps",
    "build_llm",
    "build_shared",
    "check_model_available",
    "llm_problem",
    "load_bank",
    "perceive_video",
]


@dataclass
class Deps:
    """Everything a task or a chat session over perceived video(s) needs."""

    timeline: Timeline
    store: PerceptionStore
    llm: LLMClient
    bank: ExampleBank | None
    query_embedder: QueryEmbedder | None
    """Embeds a text query into the segments' visual space (the perception embedder)."""
    text_embedder: TextEmbedder | None
    timelines: dict[str, Timeline] = field(default_factory=dict)
    """Every perceived video by name (a folder's: relative path); ``timeline`` is the first."""
    captioner: PerceptionTool | None = None
    """The perception captioner (for the chat's finer captions on demand)."""


def check_model_available(model: str) -> None:
    """Raise ``ModelLoadError`` (one line) unless ``model``'s config can be loaded."""
    from transformers import AutoConfig

    from vidagent.tools.models import load_pretrained

    load_pretrained(AutoConfig.from_pretrained, model)


def build_llm(settings: LLMSettings) -> LLMClient:
    """The LLM client. Without URLs the model loads in process: check it is reachable first, so a
    machine without hub access gets one line naming the model and how to use a local copy. With
    URLs the servers are probed (``GET /v1/models``, seconds): a server that does not answer, is
    not OpenAI-compatible or does not serve ``--llm-model`` fails before any work starts."""
    from vidagent.llm.config import build_backend, resolve_backend_name

    config = settings.llm_config()
    served = resolve_backend_name(config) == "openai"
    if not served:
        check_model_available(settings.model)
    client = build_backend(config)
    if served:
        try:
            client.probe_sync()  # a silent, wrong or modelless server fails here, in seconds
        except BaseException:
            client.close()
            raise
    return client


def llm_problem(settings: LLMSettings) -> str | None:
    """Why the served LLM of ``settings`` cannot be used right now (the probe's one line), or None
    when it answers. For long-running servers that start anyway and warn (``vidagent serve``)."""
    from vidagent.llm.config import build_backend
    from vidagent.llm.errors import LLMError

    client = build_backend(settings.llm_config(cache=False))
    try:
        client.probe_sync()
    except LLMError as err:
        return str(err)
    finally:
        client.close()
    return None


def _check_bank_dir(path: Path) -> None:
    if not path.is_dir():
        raise ConfigError(f"example bank {path}: not a directory (build one: vidagent index build)")


def load_bank(path: Path, text_embedder: TextEmbedder) -> ExampleBank:
    """The example bank in ``path`` (built by ``vidagent index build``) over ``text_embedder``."""
    from vidagent.retrieval import ExampleBank

    _check_bank_dir(path)
    return ExampleBank.load(path, text_embedder)


@dataclass
class SharedDeps:
    """What every video of a session shares: the task LLM client, the perception store, the text
    embedder and the example bank (None: no examples). ``owns_llm``: built here, close it."""

    llm: LLMClient
    store: PerceptionStore
    text_embedder: TextEmbedder
    bank: ExampleBank | None
    owns_llm: bool = True

    def close(self) -> None:
        """Close the LLM client if it was built here (one passed in stays open)."""
        if self.owns_llm:
            self.llm.close()


def build_shared(
    llm: LLMSettings | LLMClient,
    bank: Path | ExampleBank | None,
    store: PerceptionStore | None = None,
) -> SharedDeps:
    """The LLM client (a missing one fails here, before perception), the store (default: the
    settings'), the MiniLM text embedder and the bank loaded with it."""
    from vidagent.retrieval import SentenceTransformerEmbedder

    if isinstance(bank, Path):
        _check_bank_dir(bank)  # before the LLM loads
    client = build_llm(llm) if isinstance(llm, LLMSettings) else llm
    text_embedder = SentenceTransformerEmbedder()
    example_bank = load_bank(bank, text_embedder) if isinstance(bank, Path) else bank
    owns = isinstance(llm, LLMSettings)
    return SharedDeps(client, open_store(store), text_embedder, example_bank, owns_llm=owns)


def probe_videos(video: Path, *, folder: bool = False) -> list[Path]:
    """``[video]``, or with ``folder`` every video under it, each opened and checked: a missing
    or broken video is the first thing reported."""
    from vidagent.tools.video import probe_video

    videos = videos_in(video) if folder and video.is_dir() else [video]
    with quiet_native_stderr():
        for path in videos:
            probe_video(path, verify=True)
    return videos


def build_deps(
    video: str | os.PathLike[str],
    *,
    llm: LLMSettings | LLMClient,
    perception: PerceptionConfig | None = None,
    bank: Path | ExampleBank | None = None,
    store: PerceptionStore | None = None,
    folder: bool = False,
    on_progress: Progress | None = None,
) -> Deps:
    """Probe the video (``folder``: or every video under a folder), load the LLM, the example
    bank and the text embedder, then perceive (cached): bad input fails before any model loads.
    An LLM client passed in is used as is (the caller closes it); one built here is closed by
    ``deps.llm.close()``."""
    root = Path(video)
    videos = probe_videos(root, folder=folder)
    shared = build_shared(llm, bank, store)
    try:
        perceived = perceive_videos(videos, perception, store=shared.store, on_progress=on_progress)
    except BaseException:
        shared.close()
        raise
    names = [str(p.relative_to(root)) if p != root else p.name for p in videos]
    return Deps(
        perceived.timelines[0],
        shared.store,
        shared.llm,
        shared.bank,
        perceived.query_embedder,
        shared.text_embedder,
        timelines=dict(zip(names, perceived.timelines, strict=True)),
        captioner=perceived.captioner,
    )


def perceive_video(
    video: Path,
    *,
    captioner: str,
    captioner_url: str | None,
    embedder: str,
    taxonomy: Path | None,
    seconds: float,
    device: str,
    store: PerceptionStore,
    progress: Progress | None = None,
) -> tuple[Timeline, QueryEmbedder | None]:
    """``(timeline, segment embedder)`` of one video with the perception defaults and these
    options (the keywords of ``eval run --videos``); prefer :func:`vidagent.api.perceive`."""
    given = {
        "captioner": captioner,
        "captioner_url": captioner_url,
        "embedder": embedder,
        "taxonomy": taxonomy,
        "seconds": seconds,
        "device": device,
    }
    config = validated(PerceptionConfig, **{k: v for k, v in given.items() if v is not None})
    perceived = perceive_videos([video], config, store=store, on_progress=progress)
    return perceived.timelines[0], perceived.query_embedder
