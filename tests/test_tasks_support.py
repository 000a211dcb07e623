"""Shared fixtures of the task tests: one perceived test video per session, a small example bank.

Perception runs once (tiny random CLIP + BLIP, real decoding, real store); the example bank uses
the real MiniLM embedder and FAISS. Example texts carry unique markers so a test can find them in
the prompt that was sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from vidagent.core.records import ActionLabel, Caption, Segment, Segmentation, Timeline, VideoInfo
from vidagent.testing.synth import SyntheticVideo

__all__ = ["Perceived", "assert_candidates", "big_taxonomy", "labelled_timeline", "perceived"]

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

    def embeds(self) -> dict[str, Any]:
        """The task keywords for segment relevance: the store and both embedders."""
        return {
            "store": self.store,
            "query_embedder": self.query_embedder,
            "text_embedder": self.text_embedder,
        }


@pytest.fixture(scope="session")
def perceived(tmp_path_factory: pytest.TempPathFactory, h264_video: SyntheticVideo) -> Perceived:
    if "perceived" not in _SHARED:
        from vidagent.retrieval import Example, ExampleBank, SentenceTransformerEmbedder
        from vidagent.store.perception import PerceptionStore
        from vidagent.testing.tiny_models import build_tiny
        from vidagent.tools.actions import ActionParams, ActionRecognizer
        from vidagent.tools.captioner import Captioner, CaptionerParams
        from vidagent.tools.perceive import perceive
        from vidagent.tools.visual_embedder import EmbedderParams, SegmentEmbedder

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


def labelled_timeline(
    captions: Sequence[str], actions: Sequence[str] = (), path: str = "v.mp4"
) -> Timeline:
    """A timeline of 2 s segments, one per caption ('' for none), with the ``verb noun`` action
    of the same position when ``actions`` has one; no video file behind it."""
    n = len(captions)
    info = VideoInfo(
        path=path,
        fps=10,
        num_frames=20 * n,
        duration=2.0 * n,
        width=8,
        height=8,
        codec="h264",
        backend="pyav",
    )

    def labels(i: int) -> list[ActionLabel]:
        if i >= len(actions):
            return []
        verb, noun = actions[i].split(maxsplit=1)
        return [ActionLabel(verb=verb, noun=noun, score=0.5)]

    segs = [
        Segment(
            index=i,
            start=2.0 * i,
            end=2.0 * i + 2,
            start_frame=20 * i,
            end_frame=20 * i + 20,
            captions=[Caption(text=c)] if c else [],
            actions=labels(i),
        )
        for i, c in enumerate(captions)
    ]
    return Timeline(video=info, segmentation=Segmentation(method="fixed"), segments=segs)


def assert_candidates(
    candidates: Sequence[Any], verbs: Sequence[str], nouns: Sequence[str], z: int
) -> None:
    """Every candidate is ``z`` actions of the taxonomy."""
    for cand in candidates:
        assert len(cand.actions) == z
        assert all(a.verb in verbs and a.noun in nouns for a in cand.actions)


def all_text(messages: list[Any]) -> str:
    return "\n".join(m.content for m in messages)


def shown_tokens(timeline: Timeline, shown: list[int]) -> list[str]:
    return [timeline.segments[i].token for i in shown]


def test_big_taxonomy_has_ego4d_size() -> None:
    verbs, nouns = big_taxonomy()
    assert (len(set(verbs)), len(set(nouns))) == (117, 521)
