"""Shared fixtures of the task tests: one perceived test video per session, a small example bank.

Perception runs once (tiny random CLIP + BLIP, real decoding, real store); the example bank uses
the real MiniLM embedder and FAISS. Example texts carry unique markers so a test can find them in
the prompt that was sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from agent.records import Timeline
from tools.synth import SyntheticVideo

__all__ = ["Perceived", "big_taxonomy", "perceived"]

EXAMPLES: list[dict[str, Any]] = [
    {"task": "qa", "input": "What is cut? QAMARK1", "target": "A", "video_id": "ex1"},
    {"task": "qa", "input": "Where is the cup? QAMARK2", "target": "B", "video_id": "ex2"},
    {"task": "lta", "input": "take knife, LTAMARK1", "target": "cut onion", "video_id": "ex3"},
    {"task": "lta", "input": "open drawer, LTAMARK2", "target": "take cup", "video_id": "ex4"},
    {"task": "lta", "input": "wash plate, LTAMARK3", "target": "dry plate", "video_id": "ex5"},
    {"task": "localize", "input": "door opens LOCMARK1", "target": "<seg_1>", "video_id": "ex6"},
]

_SHARED: dict[str, Any] = {}


@dataclass
class Perceived:
    timeline: Timeline
    store: Any
    query_embedder: Any
    text_embedder: Any
    bank: Any
    models: dict[str, str]
    captioner: Any = None


@pytest.fixture(scope="session")
def perceived(tmp_path_factory: pytest.TempPathFactory, h264_video: SyntheticVideo) -> Perceived:
    if "perceived" not in _SHARED:
        from agent.retrieval import Example, ExampleBank, SentenceTransformerEmbedder
        from agent.store import PerceptionStore
        from tools.actions import ActionParams, ActionRecognizer
        from tools.captioner import Captioner, CaptionerParams
        from tools.embedder import EmbedderParams, SegmentEmbedder
        from tools.perceive import perceive
        from tools.tiny_models import build_tiny

        root = tmp_path_factory.mktemp("tasks")
        models = {k: str(build_tiny(k, root / "models")) for k in ("clip", "blip")}
        store = PerceptionStore(root / "store")
        embedder = SegmentEmbedder(EmbedderParams(model=models["clip"]))
        captioner = Captioner(CaptionerParams(model=models["blip"], max_new_tokens=4))
        tools = [
            captioner,
            embedder,
            ActionRecognizer(ActionParams(model=models["clip"], top_k=2), store=store),
        ]
        timeline = perceive(h264_video.path, tools=tools, store=store)
        text_embedder = SentenceTransformerEmbedder()
        bank = ExampleBank.build([Example(**e) for e in EXAMPLES], text_embedder)
        _SHARED["perceived"] = Perceived(
            timeline, store, embedder, text_embedder, bank, models, captioner
        )
    return _SHARED["perceived"]  # type: ignore[no-any-return]


def big_taxonomy() -> tuple[list[str], list[str]]:
    """A taxonomy of Ego4D v2 size (117 verbs, 521 nouns) with Ego4D-style names."""
    verbs = [f"verb{i}_(alt{i},_other)" if i % 5 == 0 else f"verb{i}" for i in range(117)]
    nouns = [f"noun_{i}_(thing,_item)" if i % 7 == 0 else f"noun{i}" for i in range(521)]
    return verbs, nouns


def all_text(messages: list[Any]) -> str:
    return "\n".join(m.content for m in messages)


def shown_tokens(timeline: Timeline, shown: list[int]) -> list[str]:
    return [timeline.segments[i].token for i in shown]


def test_big_taxonomy_has_ego4d_size() -> None:
    verbs, nouns = big_taxonomy()
    assert (len(set(verbs)), len(set(nouns))) == (117, 521)
