"""``vidagent ask`` / ``anticipate`` / ``localize``: thin commands over :mod:`vidagent.api.tasks`.

Each command turns its options into the API's typed settings (:mod:`vidagent.cli.options`: the
perception tools and their defaults are those of ``vidagent perceive``; ``--llm-url`` given: an
OpenAI-compatible vLLM server, else in-process vLLM if installed, else transformers), calls the
API function of the same name with a progress bar on stderr and prints the result (``--json``: the
whole result with its run record). Errors are :class:`~vidagent.core.errors.VidagentError` lines
through ``vidagent.cli.main.main``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, Any, Literal

import typer
from rich.console import Console

from vidagent.api.config import LLMSettings, PerceptionConfig
from vidagent.cli.options import (
    EXAMPLES,
    LLM,
    PERCEPTION,
    Examples,
    JsonOpt,
    MaxTimelineCharsOpt,
    VideoArg,
    with_options,
)
from vidagent.cli.progress import perception_progress, stderr_console
from vidagent.core.errors import ConfigError
from vidagent.tasks.answer import AnswerResult
from vidagent.tasks.anticipate import AnticipationResult
from vidagent.tasks.localize import LocalizationResult

__all__ = [
    "anticipate",
    "ask",
    "localize",
    "print_answer",
    "print_anticipation",
    "print_localization",
]


def _span(start: float, end: float) -> str:
    return f"{start:.1f}s-{end:.1f}s"


def print_answer(result: AnswerResult, console: Console) -> None:
    if result.letter:
        console.print(f"answer: {result.letter}. {result.answer}", highlight=False)
    else:
        console.print(f"answer: {result.answer}", highlight=False)
    if len(result.votes) > 1 or sum(result.votes.values()) > 1:
        console.print(f"votes: {result.votes}", highlight=False)
    cited = ", ".join(f"{c.token} [{_span(c.start, c.end)}]" for c in result.citations)
    console.print(f"segments ({result.cited_by}): {cited}", highlight=False)


def print_anticipation(result: AnticipationResult, console: Console) -> None:
    console.print(f"observed: {result.observed or '(captions only)'}", highlight=False)
    for i, cand in enumerate(result.candidates, 1):
        if cand.error:
            console.print(f"candidate {i}: failed: {cand.error}", highlight=False)
            continue
        text = ", ".join(f"{a.verb} {a.noun}" for a in cand.actions)
        console.print(f"candidate {i}: {text}", highlight=False, soft_wrap=True)
    console.print(f"valid outputs: {result.valid_rate:.0%}", highlight=False)


def print_localization(result: LocalizationResult, console: Console) -> None:
    console.print(
        f"span: {_span(result.start, result.end)} ({result.start_token} to {result.end_token}; "
        f"LLM said {result.llm_start_token} to {result.llm_end_token}"
        f"{', refined by similarity' if result.refined else ''})",
        highlight=False,
    )


def _emit(result: AnswerResult | AnticipationResult | LocalizationResult, json_out: bool) -> None:
    if json_out:
        print(result.model_dump_json(indent=2))
    elif isinstance(result, AnswerResult):
        print_answer(result, Console())
    elif isinstance(result, AnticipationResult):
        print_anticipation(result, Console())
    else:
        print_localization(result, Console())


@contextlib.contextmanager
def _shared(
    llm: LLMSettings, examples: Examples, perception: PerceptionConfig
) -> Iterator[dict[str, Any]]:
    """The API keywords every task command passes, with a perception progress bar on stderr."""
    with stderr_console() as err, perception_progress(1, err) as on_progress:
        yield {
            "llm": llm,
            "perception": perception,
            "bank": examples.bank,
            "examples": examples.count,
            "prompt": examples.prompt,
            "on_progress": on_progress,
        }


@with_options(LLM, EXAMPLES, PERCEPTION)
def ask(
    video: VideoArg,
    question: Annotated[str, typer.Argument(help="The question.", metavar="QUESTION")],
    *,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option", help="An answer option (repeat for multiple choice).", metavar="TEXT"
        ),
    ] = None,
    samples: Annotated[
        int,
        typer.Option("--samples", min=1, help="Self-consistency: sample N and vote.", metavar="N"),
    ] = 1,
    max_timeline_chars: MaxTimelineCharsOpt = 4000,
    json_out: JsonOpt = False,
    llm: LLMSettings,
    examples: Examples,
    perception: PerceptionConfig,
) -> None:
    """Answer a question about a video (multiple choice with --option); cites segments."""
    from vidagent.api.tasks import ask as answer

    with _shared(llm, examples, perception) as shared:
        result = answer(
            video, question, option, samples=samples, max_timeline_chars=max_timeline_chars,
            **shared,
        )  # fmt: skip
    _emit(result, json_out)


@with_options(LLM, EXAMPLES, PERCEPTION)
def anticipate(
    video: VideoArg,
    *,
    observed: Annotated[
        int | None,
        typer.Option("--observed", min=1, help="Observed segments (default: all).", metavar="N"),
    ] = None,
    z: Annotated[
        int, typer.Option("--z", min=1, help="Future actions per candidate.", metavar="Z")
    ] = 20,
    candidates: Annotated[
        int,
        typer.Option("--candidates", "-K", min=1, help="Candidate action sequences.", metavar="K"),
    ] = 5,
    schedule: Annotated[
        str,
        typer.Option(
            "--schedule",
            help="sample: n samples of one prompt; examples: PALM, own examples each.",
            metavar="sample|examples",
        ),
    ] = "sample",
    json_out: JsonOpt = False,
    llm: LLMSettings,
    examples: Examples,
    perception: PerceptionConfig,
) -> None:
    """Predict the next Z (verb, noun) actions, K candidates, within --taxonomy (Ego4D LTA)."""
    from vidagent.api.tasks import anticipate as predict

    if perception.taxonomy is None:
        raise ConfigError(
            "vidagent anticipate needs --taxonomy FILE: the verbs and nouns it predicts"
        )
    if schedule not in ("sample", "examples"):
        raise ConfigError(f"--schedule {schedule!r}: choose 'sample' or 'examples'")
    plan: Literal["sample", "examples"] = "sample" if schedule == "sample" else "examples"
    with _shared(llm, examples, perception) as shared:
        result = predict(
            video, perception.taxonomy, observed=observed, z=z, candidates=candidates,
            schedule=plan, **shared,
        )  # fmt: skip
    _emit(result, json_out)


@with_options(LLM, EXAMPLES, PERCEPTION)
def localize(
    video: VideoArg,
    query: Annotated[str, typer.Argument(help="What to find, in words.", metavar="QUERY")],
    *,
    refine: Annotated[
        bool,
        typer.Option(
            "--refine/--no-refine", help="Adjust the span by query similarity.", metavar=""
        ),
    ] = True,
    max_timeline_chars: MaxTimelineCharsOpt = 4000,
    json_out: JsonOpt = False,
    llm: LLMSettings,
    examples: Examples,
    perception: PerceptionConfig,
) -> None:
    """Find when something happens: prints the start and end seconds and the segment tokens."""
    from vidagent.api.tasks import localize as find

    with _shared(llm, examples, perception) as shared:
        result = find(video, query, refine=refine, max_timeline_chars=max_timeline_chars, **shared)
    _emit(result, json_out)
