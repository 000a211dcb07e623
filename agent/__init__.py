"""vidagent: an LLM-driven video understanding agent.

A video becomes a timeline of segments (``<seg_N>`` tokens with times, captions, action labels and
visual embeddings, cached by the video's content); an LLM served by vLLM, with guided decoding,
answers questions about it, anticipates the next actions and localizes moments::

    import vidagent

    timeline = vidagent.perceive("kitchen.mp4")
    llm = vidagent.LLMSettings(urls=["http://localhost:8000/v1"])
    answer = vidagent.ask("kitchen.mp4", "What is cut?", ["onion", "bread"], llm=llm)
    span = vidagent.localize("kitchen.mp4", "the person opens the fridge", llm=llm)
    metrics = vidagent.score("nextqa", "val.csv", "predictions.json")

These names come from :mod:`vidagent.api` (the Python API the ``vidagent`` command is a shell
over) and the core records and errors from :mod:`vidagent.core`; they are imported on first use,
so ``import vidagent`` itself loads nothing heavy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "vidagent.api": [
        "AnswerResult",
        "AnticipationResult",
        "LLMSettings",
        "LocalizationResult",
        "PerceptionConfig",
        "ProgressEvent",
        "anticipate",
        "ask",
        "benchmarks",
        "localize",
        "perceive",
        "perceive_many",
        "score",
        "tiny_setup",
    ],
    "vidagent.core.errors": ["ConfigError", "VidagentError", "VideoError"],
    "vidagent.core.records": ["Caption", "ActionLabel", "Segment", "Timeline", "VideoInfo"],
    "vidagent.store": ["PerceptionStore"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "ActionLabel",
    "AnswerResult",
    "AnticipationResult",
    "Caption",
    "ConfigError",
    "LLMSettings",
    "LocalizationResult",
    "PerceptionConfig",
    "PerceptionStore",
    "ProgressEvent",
    "Segment",
    "Timeline",
    "VidagentError",
    "VideoError",
    "VideoInfo",
    "anticipate",
    "ask",
    "benchmarks",
    "localize",
    "perceive",
    "perceive_many",
    "score",
    "tiny_setup",
]

if TYPE_CHECKING:
    from vidagent.api import (
        AnswerResult,
        AnticipationResult,
        LLMSettings,
        LocalizationResult,
        PerceptionConfig,
        ProgressEvent,
        anticipate,
        ask,
        benchmarks,
        localize,
        perceive,
        perceive_many,
        score,
        tiny_setup,
    )
    from vidagent.core.errors import ConfigError, VidagentError, VideoError
    from vidagent.core.records import ActionLabel, Caption, Segment, Timeline, VideoInfo
    from vidagent.store import PerceptionStore


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'vidagent' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
