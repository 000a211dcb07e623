"""Where ``vidagent eval run`` gets what it runs on: the timelines of the samples' videos and the
example bank (built here, in the CLI, from the paths the options name)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vidagent.evals.runner import RunConfig
    from vidagent.evals.sources import TimelineSource
    from vidagent.retrieval.bank import ExampleBank

__all__ = ["load_bank", "timeline_source"]


def load_bank(directory: Path | None) -> ExampleBank | None:
    if directory is None:
        return None
    from vidagent.retrieval import ExampleBank, SentenceTransformerEmbedder

    return ExampleBank.load(directory, SentenceTransformerEmbedder())


def timeline_source(
    kind: str, path: Path, config: RunConfig, taxonomy: Path | None, device: str
) -> TimelineSource:
    from vidagent.evals.sources import CaptionsFile, TimelineDir

    if kind == "timelines":
        return TimelineDir(path)
    if kind == "captions":
        return CaptionsFile(path)
    return _video_source(path, config, taxonomy, device)


def _video_source(
    directory: Path, config: RunConfig, taxonomy: Path | None, device: str
) -> TimelineSource:
    """Perceive ``<dir>/<video_id>.*`` on first use (cached in the perception store); for LTA the
    action recognizer labels segments with the benchmark's own taxonomy."""
    import threading

    from vidagent.api.deps import perceive_video
    from vidagent.core.settings import load_settings
    from vidagent.evals.common import EvalError
    from vidagent.store.perception import PerceptionStore

    if not directory.is_dir():
        raise EvalError(directory, "not a directory of videos")
    captioner, embedder, seconds = config.captioner, config.embedder, config.seconds
    if captioner is None or embedder is None or seconds is None:
        raise EvalError(directory, "a --videos run needs a captioner, an embedder and --seconds")
    store = PerceptionStore(load_settings().store_dir)
    lock = threading.Lock()  # perception models are loaded once and used by one thread at a time

    def get(video_id: str) -> Any:
        matches = sorted(directory.glob(f"{video_id}.*"))
        if not matches:
            raise EvalError(directory, f"no video file for {video_id!r}")
        with lock:
            timeline, _ = perceive_video(
                matches[0], captioner=captioner, captioner_url=None, embedder=embedder,
                taxonomy=taxonomy, seconds=seconds,
                device=device, store=store,
            )  # fmt: skip
        return timeline

    return get
