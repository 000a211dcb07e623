"""``vidagent demo``: ask, anticipate and localize end to end on a generated video, offline.

Everything is real code on tiny inputs: a synthetic H.264 video (:mod:`tools.synth`), tiny
random-weight perception models (:mod:`tools.tiny_models`: CLIP for embeddings and zero-shot
actions, BLIP for captions) and a tiny random Llama (:mod:`agent.llm.tiny`), all built into the
vidagent home's ``models_dir`` so later runs reuse them; in-process perception cached in the
store; an example bank of a few synthetic examples embedded with the bundled MiniLM; and the
embedded LLM backend (in-process vLLM if installed, else transformers) with guided decoding. The
weights are random: the demo checks that the install works, not the quality of the answers.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console

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


def demo_models(models_dir: Path) -> dict[str, Path]:
    """Tiny CLIP, BLIP and Llama under ``models_dir/demo`` (built once, then reused)."""
    from agent.llm.tiny import build_tiny_llama
    from tools.tiny_models import build_tiny

    root = models_dir / "demo"
    llama = root / "tiny-llama"
    if not (llama / "config.json").exists() or not (llama / "tokenizer.json").exists():
        build_tiny_llama(llama)
    return {"clip": build_tiny("clip", root), "blip": build_tiny("blip", root), "llm": llama}


def demo_bank(embedder: Any) -> Any:
    from agent.retrieval import Example, ExampleBank

    return ExampleBank.build([Example(**e) for e in _EXAMPLES], embedder)


def run_demo(out_dir: Path, console: Console) -> dict[str, Any]:
    """Run the demo, print each result, write each run record under ``out_dir``; return them."""
    from agent.cli import quiet_native_stderr
    from agent.llm.config import LLMConfig, build_backend
    from agent.retrieval import SentenceTransformerEmbedder
    from agent.settings import load_settings
    from agent.store import PerceptionStore
    from agent.task_cli import print_answer, print_anticipation, print_localization
    from agent.tasks import ContextOptions, answer_question, anticipate_actions, localize_query
    from tools.actions import ActionParams, ActionRecognizer, Taxonomy
    from tools.captioner import Captioner, CaptionerParams
    from tools.embedder import EmbedderParams, SegmentEmbedder
    from tools.perceive import perceive
    from tools.synth import write_video

    started = time.perf_counter()
    console.rule("[bold yellow]vidagent demo: tiny RANDOM-WEIGHT models[/]")
    console.print(
        "The models below have random weights: answers are arbitrary. The demo checks that "
        "perception, retrieval, prompting and guided decoding work on this machine, offline.",
        highlight=False,
    )
    settings = load_settings()
    out_dir.mkdir(parents=True, exist_ok=True)
    video = out_dir / "demo.mp4"
    if not video.exists():
        write_video(video, seconds=10, fps=10, width=160, height=120, cuts=[40, 70])
    console.print(f"[bold]1/5[/] video {video}", highlight=False)
    models = demo_models(settings.models_dir)
    console.print(f"[bold]2/5[/] tiny models in {settings.models_dir / 'demo'}", highlight=False)
    store = PerceptionStore(settings.store_dir)
    embedder = SegmentEmbedder(EmbedderParams(model=str(models["clip"])))
    tools: list[Any] = [
        Captioner(CaptionerParams(model=str(models["blip"]), max_new_tokens=8)),
        embedder,
        ActionRecognizer(ActionParams(model=str(models["clip"]), top_k=2), store=store),
    ]
    with quiet_native_stderr():
        timeline = perceive(video, tools=tools, store=store, seconds=2.0)
    console.print(
        f"[bold]3/5[/] {len(timeline.segments)} segments (cached in {settings.store_dir})",
        highlight=False,
    )
    text_embedder = SentenceTransformerEmbedder()
    bank = demo_bank(text_embedder)
    console.print(f"[bold]4/5[/] example bank of {len(bank)} examples (MiniLM + FAISS)")
    llm = build_backend(
        LLMConfig(model=str(models["llm"]), hf_model=str(models["llm"]), max_concurrency=4)
    )
    console.print(f"[bold]5/5[/] LLM backend: {llm.backend.name} on {models['llm'].name}")
    context = ContextOptions(k=1, max_timeline_chars=300)
    shared: dict[str, Any] = {"llm": llm, "bank": bank, "context": context}
    embed: dict[str, Any] = {
        "store": store,
        "query_embedder": embedder,
        "text_embedder": text_embedder,
    }
    results: dict[str, Any] = {}
    try:
        console.rule(f"ask: {DEMO_QUESTION}")
        results["ask"] = answer_question(
            timeline, DEMO_QUESTION, DEMO_OPTIONS, **shared, **embed, samples=3
        )
        print_answer(results["ask"], console)
        console.rule("anticipate")
        taxonomy = Taxonomy.basic()
        results["anticipate"] = anticipate_actions(
            timeline, verbs=taxonomy.verbs, nouns=taxonomy.nouns, z=DEMO_Z, k=DEMO_K, **shared
        )
        print_anticipation(results["anticipate"], console)
        console.rule(f"localize: {DEMO_QUERY}")
        results["localize"] = localize_query(timeline, DEMO_QUERY, **shared, **embed)
        print_localization(results["localize"], console)
    finally:
        llm.close()
    for name, result in results.items():
        (out_dir / f"{name}.json").write_text(result.model_dump_json(indent=2), encoding="utf-8")
    console.rule()
    console.print(
        f"[green]done[/] in {time.perf_counter() - started:.1f}s: run records in {out_dir}/ "
        "(ask.json, anticipate.json, localize.json). Random weights: this checked the install, "
        "not quality.",
        highlight=False,
    )
    return results
