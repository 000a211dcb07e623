"""``vidagent ask`` / ``anticipate`` / ``localize`` / ``demo``: thin commands over agent.tasks.

Each command builds its dependencies from options (the only place that does): the perception
tools (defaults and option style of ``vidagent perceive``), the perception store, the LLM client
(``--llm-url`` given: an OpenAI-compatible vLLM server; else in-process vLLM if installed, else
transformers), the MiniLM text embedder and the optional example bank; then it runs the task and
prints the result (``--json``: the whole result with its run record). Errors are
:class:`~agent.errors.VidagentError` lines through ``agent.cli.main``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from agent.errors import ConfigError
from agent.tasks.context import DEFAULT_LLM_MODEL
from tools.captioner import DEFAULT_CAPTIONER
from tools.embedder import DEFAULT_VISUAL_MODEL

VideoArg = Annotated[Path, typer.Argument(help="Path to a video file.")]
LLMUrlOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--llm-url", help="OpenAI-compatible vLLM server URL (repeat for replicas).", metavar="URL"
    ),
]
LLMModelOpt = Annotated[
    str,
    typer.Option(
        "--llm-model",
        help="LLM hub id or local folder (with --llm-url: the served model name).",
    ),
]
BankOpt = Annotated[
    Path | None,
    typer.Option("--bank", help="Example bank folder (vidagent index build); none: no examples."),
]
KOpt = Annotated[int, typer.Option("--k", min=0, help="In-context examples per prompt.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the whole run record as JSON.")]
PromptOpt = Annotated[
    Path | None, typer.Option("--prompt", help="Your own prompt file (YAML, see prompts/).")
]
CaptionerOpt = Annotated[
    str, typer.Option("--captioner", help="Captioning VLM: hub id or local folder.")
]
CaptionerUrlOpt = Annotated[
    str | None, typer.Option("--captioner-url", help="Caption with a VLM served at this URL.")
]
EmbedderOpt = Annotated[
    str, typer.Option("--embedder", help="CLIP/SigLIP model for segment embeddings and actions.")
]
TaxonomyOpt = Annotated[
    Path | None,
    typer.Option("--taxonomy", help='Verb/noun taxonomy JSON ({"verbs": [...], "nouns": [...]}).'),
]
SecondsOpt = Annotated[
    float, typer.Option("--seconds", "-s", min=0.1, help="Segment length in seconds.")
]
DeviceOpt = Annotated[str, typer.Option("--device", help="Perception device (auto, cpu, cuda).")]
MaxCharsOpt = Annotated[
    int, typer.Option("--max-timeline-chars", min=40, help="Timeline text budget (characters).")
]


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
) -> tuple[list[Any], Any]:
    """``(timelines, segment embedder)`` of ``videos`` (cached in the store; models load once)."""
    from agent.cli import quiet_native_stderr
    from agent.perceive_cli import build_tools
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
    timelines = []
    for video in videos:
        if not video.is_file():
            from agent.errors import VideoNotFoundError

            raise VideoNotFoundError(video, "no such file")
        with quiet_native_stderr():
            timelines.append(perceive(video, tools=tools, store=store, seconds=seconds))
    query_embedder = next(t for t in tools if t.name == "embedder")
    return timelines, query_embedder


def perceive_video(video: Path, **options: Any) -> tuple[Any, Any]:
    """``(timeline, segment embedder)`` of one video; options of :func:`perceive_videos`."""
    timelines, query_embedder = perceive_videos([video], **options)
    return timelines[0], query_embedder


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
    from agent.retrieval import ExampleBank, SentenceTransformerEmbedder
    from agent.settings import load_settings
    from agent.store import PerceptionStore
    from tools.video import probe_video

    videos = find_videos(None, video) if folder and video.is_dir() else [video]
    with quiet_native_stderr():  # a missing or broken video is the first thing to report
        for path in videos:
            probe_video(path, verify=True)
    if bank is not None and not bank.is_dir():
        raise ConfigError(f"--bank {bank}: not a directory")
    settings = load_settings()
    llm = build_llm(llm_url, llm_model)  # a missing LLM fails before perception runs
    store = PerceptionStore(settings.store_dir)
    text_embedder = SentenceTransformerEmbedder()
    example_bank = None if bank is None else ExampleBank.load(bank, text_embedder)
    timelines, query_embedder = perceive_videos(
        videos,
        captioner=captioner,
        captioner_url=captioner_url,
        embedder=embedder,
        taxonomy=taxonomy,
        seconds=seconds,
        device=device,
        store=store,
    )
    names = [str(p.relative_to(video)) if p != video else p.name for p in videos]
    return Deps(
        timelines[0],
        store,
        llm,
        example_bank,
        query_embedder,
        text_embedder,
        timelines=dict(zip(names, timelines, strict=True)),
    )


def _prompt(path: Path | None) -> Any:
    from agent.prompting import load_prompt

    return load_prompt(path) if path is not None else None


def _context(k: int, max_chars: int) -> Any:
    from agent.tasks.context import ContextOptions

    return ContextOptions(k=k, max_timeline_chars=max_chars)


def _span(start: float, end: float) -> str:
    return f"{start:.1f}s-{end:.1f}s"


def print_answer(result: Any, console: Console) -> None:
    if result.letter:
        console.print(f"answer: {result.letter}. {result.answer}", highlight=False)
    else:
        console.print(f"answer: {result.answer}", highlight=False)
    if len(result.votes) > 1 or sum(result.votes.values()) > 1:
        console.print(f"votes: {result.votes}", highlight=False)
    cited = ", ".join(f"{c.token} [{_span(c.start, c.end)}]" for c in result.citations)
    console.print(f"segments ({result.cited_by}): {cited}", highlight=False)


def print_anticipation(result: Any, console: Console) -> None:
    console.print(f"observed: {result.observed or '(captions only)'}", highlight=False)
    for i, cand in enumerate(result.candidates, 1):
        if cand.error:
            console.print(f"candidate {i}: failed: {cand.error}", highlight=False)
            continue
        text = ", ".join(f"{a.verb} {a.noun}" for a in cand.actions)
        console.print(f"candidate {i}: {text}", highlight=False, soft_wrap=True)
    console.print(f"valid outputs: {result.valid_rate:.0%}", highlight=False)


def print_localization(result: Any, console: Console) -> None:
    console.print(
        f"span: {_span(result.start, result.end)} ({result.start_token} to {result.end_token}; "
        f"LLM said {result.llm_start_token} to {result.llm_end_token}"
        f"{', refined by similarity' if result.refined else ''})",
        highlight=False,
    )


def ask(
    video: VideoArg,
    question: Annotated[str, typer.Argument(help="The question.")],
    option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="An answer option (repeat).")
    ] = None,
    samples: Annotated[
        int, typer.Option("--samples", min=1, help="Self-consistency: sample N and vote.")
    ] = 1,
    llm_url: LLMUrlOpt = None,
    llm_model: LLMModelOpt = DEFAULT_LLM_MODEL,
    bank: BankOpt = None,
    k: KOpt = 4,
    prompt: PromptOpt = None,
    captioner: CaptionerOpt = DEFAULT_CAPTIONER,
    captioner_url: CaptionerUrlOpt = None,
    embedder: EmbedderOpt = DEFAULT_VISUAL_MODEL,
    taxonomy: TaxonomyOpt = None,
    seconds: SecondsOpt = 2.0,
    device: DeviceOpt = "auto",
    max_timeline_chars: MaxCharsOpt = 4000,
    json_out: JsonOpt = False,
) -> None:
    """Answer a question about a video (multiple choice with --option); cites segments."""
    from agent.tasks.answer import answer_question

    template = _prompt(prompt)
    deps = build_deps(
        video,
        llm_url=llm_url,
        llm_model=llm_model,
        bank=bank,
        captioner=captioner,
        captioner_url=captioner_url,
        embedder=embedder,
        taxonomy=taxonomy,
        seconds=seconds,
        device=device,
    )
    try:
        result = answer_question(
            deps.timeline,
            question,
            option,
            llm=deps.llm,
            bank=deps.bank,
            store=deps.store,
            query_embedder=deps.query_embedder,
            text_embedder=deps.text_embedder,
            prompt=template,
            context=_context(k, max_timeline_chars),
            samples=samples,
        )
    finally:
        deps.llm.close()
    _emit(result, json_out, print_answer)


def anticipate(
    video: VideoArg,
    taxonomy: Annotated[
        Path,
        typer.Option("--taxonomy", help="Ego4D-style verb/noun taxonomy JSON."),
    ],
    observed: Annotated[
        int | None, typer.Option("--observed", min=1, help="Observed segments (default: all).")
    ] = None,
    z: Annotated[int, typer.Option("--z", min=1, help="Future actions per candidate.")] = 20,
    candidates: Annotated[int, typer.Option("--candidates", "-K", min=1, help="Candidates.")] = 5,
    schedule: Annotated[
        str,
        typer.Option(
            "--schedule", help="sample: n samples of one prompt; examples: PALM, own examples each."
        ),
    ] = "sample",
    llm_url: LLMUrlOpt = None,
    llm_model: LLMModelOpt = DEFAULT_LLM_MODEL,
    bank: BankOpt = None,
    k: KOpt = 4,
    prompt: PromptOpt = None,
    captioner: CaptionerOpt = DEFAULT_CAPTIONER,
    captioner_url: CaptionerUrlOpt = None,
    embedder: EmbedderOpt = DEFAULT_VISUAL_MODEL,
    seconds: SecondsOpt = 2.0,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
) -> None:
    """Predict the next Z (verb, noun) actions, K candidates, within the taxonomy (Ego4D LTA)."""
    from agent.tasks.anticipate import anticipate_actions
    from tools.actions import Taxonomy

    if schedule not in ("sample", "examples"):
        raise ConfigError(f"--schedule {schedule!r}: choose 'sample' or 'examples'")
    tax = Taxonomy.load(taxonomy)
    template = _prompt(prompt)
    deps = build_deps(
        video,
        llm_url=llm_url,
        llm_model=llm_model,
        bank=bank,
        captioner=captioner,
        captioner_url=captioner_url,
        embedder=embedder,
        taxonomy=taxonomy,
        seconds=seconds,
        device=device,
    )
    try:
        result = anticipate_actions(
            deps.timeline,
            verbs=tax.verbs,
            nouns=tax.nouns,
            llm=deps.llm,
            bank=deps.bank,
            prompt=template,
            context=_context(k, 4000),
            observed=observed,
            z=z,
            k=candidates,
            schedule=schedule,  # type: ignore[arg-type]
        )
    finally:
        deps.llm.close()
    _emit(result, json_out, print_anticipation)


def localize(
    video: VideoArg,
    query: Annotated[str, typer.Argument(help="What to find, in words.")],
    llm_url: LLMUrlOpt = None,
    llm_model: LLMModelOpt = DEFAULT_LLM_MODEL,
    bank: BankOpt = None,
    k: KOpt = 4,
    prompt: PromptOpt = None,
    captioner: CaptionerOpt = DEFAULT_CAPTIONER,
    captioner_url: CaptionerUrlOpt = None,
    embedder: EmbedderOpt = DEFAULT_VISUAL_MODEL,
    taxonomy: TaxonomyOpt = None,
    seconds: SecondsOpt = 2.0,
    device: DeviceOpt = "auto",
    max_timeline_chars: MaxCharsOpt = 4000,
    refine: Annotated[
        bool, typer.Option("--refine/--no-refine", help="Adjust the span by query similarity.")
    ] = True,
    json_out: JsonOpt = False,
) -> None:
    """Find when something happens: prints [start, end] seconds and the segment tokens."""
    from agent.tasks.localize import localize_query

    template = _prompt(prompt)
    deps = build_deps(
        video,
        llm_url=llm_url,
        llm_model=llm_model,
        bank=bank,
        captioner=captioner,
        captioner_url=captioner_url,
        embedder=embedder,
        taxonomy=taxonomy,
        seconds=seconds,
        device=device,
    )
    try:
        result = localize_query(
            deps.timeline,
            query,
            llm=deps.llm,
            bank=deps.bank,
            store=deps.store,
            query_embedder=deps.query_embedder,
            text_embedder=deps.text_embedder,
            prompt=template,
            context=_context(k, max_timeline_chars),
            refine=refine,
        )
    finally:
        deps.llm.close()
    _emit(result, json_out, print_localization)


def demo(
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Where to write the demo video and run records.")
    ] = Path("vidagent-demo"),
) -> None:
    """Run ask, anticipate and localize end to end on a generated video, offline.

    Builds tiny random-weight models in the vidagent home (reused by later runs): it checks the
    install, not the quality of answers.
    """
    from agent.demo import run_demo

    run_demo(out_dir, Console())


def _emit(result: Any, json_out: bool, printer: Any) -> None:
    console = Console()
    if json_out:
        print(result.model_dump_json(indent=2))
    else:
        printer(result, console)
