"""The demo: ask, anticipate and localize end to end on a generated video, offline.

Everything is real code on tiny inputs: a synthetic H.264 video (:mod:`vidagent.testing.synth`),
tiny random-weight perception models (:mod:`vidagent.testing.tiny_models`: CLIP for embeddings and
zero-shot actions, BLIP for captions) and a tiny random Llama (:mod:`vidagent.testing.tiny_llm`),
all built into the vidagent home's ``models_dir`` so later runs reuse them; in-process perception
cached in the store; an example bank of a few synthetic examples embedded with the bundled MiniLM;
and the embedded LLM backend (in-process vLLM if installed, else transformers) with guided
decoding. The weights are random: the demo checks that the install works, not the quality of the
answers. Its files go to ``$VIDAGENT_HOME/demo`` unless the caller names a folder; it reports
each step and result to a callback (``vidagent demo`` prints them).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from vidagent.tasks.answer import AnswerResult
from vidagent.tasks.anticipate import AnticipationResult
from vidagent.tasks.localize import LocalizationResult

if TYPE_CHECKING:
    from vidagent.api.config import LLMSettings, PerceptionConfig
    from vidagent.retrieval import ExampleBank, TextEmbedder

DEMO_QUESTION = "What does the person pick up?"
DEMO_OPTIONS = ["a knife", "a cup", "a phone"]
DEMO_QUERY = "the person opens the drawer"
DEMO_Z, DEMO_K = 4, 2
"""Small Z and K keep the demo's run time small."""

_EXAMPLES: list[dict[str, Any]] = [
    {"task": "qa", "input": "What is cut? A. onion B. bread", "target": "A", "video_id": "ex1"},
    {"task": "qa", "input": "Where is the cup put?", "target": "on the table", "video_id": "ex2"},
    {"task": "lta", "input": "take knife, cut onion", "target": "put knife", "video_id": "ex3"},
    {"task": "lta", "input": "open drawer, take cup", "target": "close drawer", "video_id": "ex4"},
    {
        "task": "localize",
        "input": "opens the door",
        "target": "<seg_1> to <seg_2>",
        "video_id": "ex5",
    },
]

DemoResult: TypeAlias = AnswerResult | AnticipationResult | LocalizationResult

__all__ = [
    "DemoEvent",
    "DemoResults",
    "default_demo_dir",
    "demo_models",
    "run_demo",
    "tiny_setup",
]


@dataclass(frozen=True)
class DemoEvent:
    """``step``: a set-up step done (``text``); ``task``: ``name`` starts (``text`` says what);
    ``result``: ``name``'s result."""

    kind: Literal["step", "task", "result"]
    text: str = ""
    name: str = ""
    result: DemoResult | None = None


@dataclass(frozen=True)
class DemoResults:
    out_dir: Path
    ask: AnswerResult
    anticipate: AnticipationResult
    localize: LocalizationResult
    seconds: float


def default_demo_dir() -> Path:
    """Where the demo writes by default: ``$VIDAGENT_HOME/demo`` (never the current folder)."""
    from vidagent.core.settings import load_settings

    return load_settings().home / "demo"


def demo_models(models_dir: Path) -> dict[str, Path]:
    """Tiny CLIP, BLIP and Llama under ``models_dir/demo`` (built once, then reused)."""
    from vidagent.testing.tiny_llm import build_tiny_llama
    from vidagent.testing.tiny_models import build_tiny

    root = models_dir / "demo"
    llama = root / "tiny-llama"
    if not (llama / "config.json").exists() or not (llama / "tokenizer.json").exists():
        build_tiny_llama(llama)
    return {"clip": build_tiny("clip", root), "blip": build_tiny("blip", root), "llm": llama}


def tiny_setup(models_dir: Path | None = None) -> tuple[PerceptionConfig, LLMSettings]:
    """Perception and LLM settings on the demo's tiny random-weight models (built once under
    ``models_dir``, default the vidagent home's; offline). What ``--tiny`` runs: it checks the
    install and the pipeline on your own videos; the answers mean nothing."""
    from vidagent.api.config import LLMSettings, PerceptionConfig
    from vidagent.core.settings import load_settings
    from vidagent.tools.taxonomy import BUILTIN_NAME

    models = demo_models(models_dir or load_settings().models_dir)
    perception = PerceptionConfig(
        captioner=str(models["blip"]), embedder=str(models["clip"]), taxonomy=Path(BUILTIN_NAME)
    )
    return perception, LLMSettings(model=str(models["llm"]))


def demo_bank(embedder: TextEmbedder) -> ExampleBank:
    from vidagent.retrieval import Example, ExampleBank

    return ExampleBank.build([Example(**e) for e in _EXAMPLES], embedder)


def run_demo(
    out_dir: Path | None = None, report: Callable[[DemoEvent], None] | None = None
) -> DemoResults:
    """Run the demo, telling ``report`` each step and result; write each run record under
    ``out_dir`` (default :func:`default_demo_dir`)."""
    from vidagent.api.config import PerceptionConfig
    from vidagent.api.perception import open_store, perceive_videos
    from vidagent.core.settings import load_settings
    from vidagent.llm.config import LLMConfig, build_backend
    from vidagent.retrieval import SentenceTransformerEmbedder
    from vidagent.tasks import TaskOptions, answer_question, anticipate_actions, localize_query
    from vidagent.testing.synth import write_video
    from vidagent.tools.actions import Taxonomy

    def tell(event: DemoEvent) -> None:
        if report is not None:
            report(event)

    started = time.perf_counter()
    settings = load_settings()
    out_dir = out_dir if out_dir is not None else default_demo_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    video = out_dir / "demo.mp4"
    if not video.exists():
        write_video(video, seconds=10, fps=10, width=160, height=120, cuts=[40, 70])
    tell(DemoEvent("step", f"1/5 video {video}"))
    models = demo_models(settings.models_dir)
    tell(DemoEvent("step", f"2/5 tiny models in {settings.models_dir / 'demo'}"))
    store = open_store()
    config = PerceptionConfig(
        captioner=str(models["blip"]), caption_max_tokens=8, embedder=str(models["clip"]),
        top_k=2, seconds=2.0,
    )  # fmt: skip
    perceived = perceive_videos([video], config, store=store)
    timeline = perceived.timelines[0]
    tell(DemoEvent("step", f"3/5 {len(timeline.segments)} segments (cached in {store.root})"))
    text_embedder = SentenceTransformerEmbedder()
    bank = demo_bank(text_embedder)
    tell(DemoEvent("step", f"4/5 example bank of {len(bank)} examples (MiniLM + FAISS)"))
    llm = build_backend(
        LLMConfig(model=str(models["llm"]), hf_model=str(models["llm"]), max_concurrency=4)
    )
    tell(DemoEvent("step", f"5/5 LLM backend: {llm.backend.name} on {models['llm'].name}"))
    shared: dict[str, Any] = {
        "llm": llm,
        "bank": bank,
        "context": TaskOptions(k=1, max_timeline_chars=300),
    }
    embed: dict[str, Any] = {
        "store": store,
        "query_embedder": perceived.query_embedder,
        "text_embedder": text_embedder,
    }
    try:
        tell(DemoEvent("task", f"ask: {DEMO_QUESTION}", "ask"))
        answer = answer_question(
            timeline, DEMO_QUESTION, DEMO_OPTIONS, **shared, **embed, samples=3
        )
        tell(DemoEvent("result", name="ask", result=answer))
        tell(DemoEvent("task", "anticipate", "anticipate"))
        taxonomy = Taxonomy.basic()
        future = anticipate_actions(
            timeline, verbs=taxonomy.verbs, nouns=taxonomy.nouns, z=DEMO_Z, k=DEMO_K, **shared
        )
        tell(DemoEvent("result", name="anticipate", result=future))
        tell(DemoEvent("task", f"localize: {DEMO_QUERY}", "localize"))
        span = localize_query(timeline, DEMO_QUERY, **shared, **embed)
        tell(DemoEvent("result", name="localize", result=span))
    finally:
        llm.close()
    results: dict[str, DemoResult] = {"ask": answer, "anticipate": future, "localize": span}
    for name, result in results.items():
        (out_dir / f"{name}.json").write_text(result.model_dump_json(indent=2), encoding="utf-8")
    return DemoResults(out_dir, answer, future, span, time.perf_counter() - started)
