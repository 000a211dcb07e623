"""``vidagent ask`` / ``anticipate`` / ``localize`` / ``demo``: thin commands over agent.tasks.

Each command builds its dependencies from options with :func:`agent.deps.build_deps`: the
perception tools (defaults and option style of ``vidagent perceive``), the perception store, the
LLM client (``--llm-url`` given: an OpenAI-compatible vLLM server; else in-process vLLM if
installed, else transformers), the MiniLM text embedder and the optional example bank; then it runs
the task and prints the result (``--json``: the whole result with its run record). The option types
here are shared with ``chat`` and ``serve``. Errors are
:class:`~agent.errors.VidagentError` lines through ``agent.cli.main``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from agent.deps import build_deps
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
    """Find when something happens: prints the start and end seconds and the segment tokens."""
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
