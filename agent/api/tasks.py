"""Ask about a video, anticipate its next actions, localize a moment: one call each.

Each function perceives the video (cached in the perception store), loads the LLM (or uses the
client passed in), the MiniLM text embedder and the optional example bank, runs the task and
returns its typed result with the run record. The defaults are those of the ``vidagent`` commands
of the same names, which call these functions. ``examples``: in-context examples per prompt,
default 4 with a ``bank`` and none without; asking for examples without a bank is a ConfigError.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidagent.api.config import LLMSettings, PerceptionConfig, example_count
from vidagent.api.deps import Deps, build_deps
from vidagent.core.errors import ConfigError
from vidagent.llm.backend import LLMClient
from vidagent.tasks.answer import AnswerResult
from vidagent.tasks.anticipate import AnticipationResult, Schedule
from vidagent.tasks.localize import LocalizationResult
from vidagent.tasks.steps import TaskOptions
from vidagent.tools.perceive_records import Progress

if TYPE_CHECKING:
    from vidagent.prompts.loader import PromptTemplate
    from vidagent.retrieval import ExampleBank
    from vidagent.store.perception import PerceptionStore
    from vidagent.tools.actions import Taxonomy

__all__ = ["anticipate", "ask", "load_template", "localize"]

DEFAULT_MAX_TIMELINE_CHARS = 4000


def load_template(prompt: Path | PromptTemplate | None) -> PromptTemplate | None:
    """A prompt template from a YAML file (checked now), as given, or None (the task's own)."""
    if prompt is None or not isinstance(prompt, (str, os.PathLike)):
        return prompt
    from vidagent.prompts.loader import load_prompt

    return load_prompt(Path(prompt))


@contextlib.contextmanager
def _task_deps(
    video: str | os.PathLike[str],
    llm: LLMSettings | LLMClient | None,
    perception: PerceptionConfig | None,
    bank: Path | ExampleBank | None,
    store: PerceptionStore | None,
    on_progress: Progress | None,
) -> Iterator[Deps]:
    """The task's dependencies; an LLM built here is closed at the end."""
    settings = llm if llm is not None else LLMSettings()
    deps = build_deps(
        video, llm=settings, perception=perception, bank=bank, store=store,
        on_progress=on_progress,
    )  # fmt: skip
    try:
        yield deps
    finally:
        if not isinstance(settings, LLMClient):
            deps.llm.close()


def _retrieval(deps: Deps) -> dict[str, Any]:
    """The LLM, the bank and what relevance needs (store, both embedders), as task keywords."""
    return {
        "llm": deps.llm,
        "bank": deps.bank,
        "store": deps.store,
        "query_embedder": deps.query_embedder,
        "text_embedder": deps.text_embedder,
    }


def _options(examples: int | None, bank: object, max_timeline_chars: int) -> TaskOptions:
    return TaskOptions(
        k=example_count(examples, bank is not None), max_timeline_chars=max_timeline_chars
    )


def ask(
    video: str | os.PathLike[str],
    question: str,
    options: Sequence[str] | None = None,
    *,
    llm: LLMSettings | LLMClient | None = None,
    perception: PerceptionConfig | None = None,
    bank: Path | ExampleBank | None = None,
    examples: int | None = None,
    prompt: Path | PromptTemplate | None = None,
    max_timeline_chars: int = DEFAULT_MAX_TIMELINE_CHARS,
    samples: int = 1,
    store: PerceptionStore | None = None,
    on_progress: Progress | None = None,
) -> AnswerResult:
    """Answer ``question`` about ``video`` (multiple choice with ``options``), citing segments;
    ``samples`` > 1: self-consistency, sample that many and vote."""
    from vidagent.tasks.answer import answer_question

    context = _options(examples, bank, max_timeline_chars)
    template = load_template(prompt)
    with _task_deps(video, llm, perception, bank, store, on_progress) as deps:
        return answer_question(
            deps.timeline,
            question,
            list(options) if options else None,
            **_retrieval(deps),
            prompt=template,
            context=context,
            samples=samples,
        )


def anticipate(
    video: str | os.PathLike[str],
    taxonomy: Path | Taxonomy | None = None,
    *,
    observed: int | None = None,
    z: int = 20,
    candidates: int = 5,
    schedule: Schedule = "sample",
    llm: LLMSettings | LLMClient | None = None,
    perception: PerceptionConfig | None = None,
    bank: Path | ExampleBank | None = None,
    examples: int | None = None,
    prompt: Path | PromptTemplate | None = None,
    store: PerceptionStore | None = None,
    on_progress: Progress | None = None,
) -> AnticipationResult:
    """Predict the next ``z`` (verb, noun) actions after the first ``observed`` segments (default
    all), ``candidates`` sequences, within ``taxonomy`` (default: ``perception.taxonomy``, which
    also labels the segments; a taxonomy file given here labels them too when perception names
    none). ``schedule``: ``sample`` (n samples of one prompt) or ``examples`` (PALM: own examples
    per candidate)."""
    from vidagent.tasks.anticipate import anticipate_actions
    from vidagent.tools.actions import Taxonomy

    perception = perception or PerceptionConfig()
    if taxonomy is None:
        taxonomy = perception.taxonomy
    if taxonomy is None:
        raise ConfigError("anticipation needs a taxonomy: the verbs and nouns it predicts")
    if schedule not in ("sample", "examples"):
        raise ConfigError(f"schedule {schedule!r}: choose 'sample' or 'examples'")
    if isinstance(taxonomy, Taxonomy):
        labels = taxonomy
    else:
        labels = Taxonomy.load(taxonomy)
        if perception.taxonomy is None:
            perception = perception.model_copy(update={"taxonomy": Path(taxonomy)})
    context = _options(examples, bank, DEFAULT_MAX_TIMELINE_CHARS)
    template = load_template(prompt)
    with _task_deps(video, llm, perception, bank, store, on_progress) as deps:
        return anticipate_actions(
            deps.timeline,
            verbs=labels.verbs,
            nouns=labels.nouns,
            llm=deps.llm,
            bank=deps.bank,
            prompt=template,
            context=context,
            observed=observed,
            z=z,
            k=candidates,
            schedule=schedule,
        )


def localize(
    video: str | os.PathLike[str],
    query: str,
    *,
    refine: bool = True,
    llm: LLMSettings | LLMClient | None = None,
    perception: PerceptionConfig | None = None,
    bank: Path | ExampleBank | None = None,
    examples: int | None = None,
    prompt: Path | PromptTemplate | None = None,
    max_timeline_chars: int = DEFAULT_MAX_TIMELINE_CHARS,
    store: PerceptionStore | None = None,
    on_progress: Progress | None = None,
) -> LocalizationResult:
    """When ``query`` happens in ``video``: a [start, end] span in seconds and its segment tokens
    (``refine``: the LLM's span adjusted by the segments' similarity to the query)."""
    from vidagent.tasks.localize import localize_query

    context = _options(examples, bank, max_timeline_chars)
    template = load_template(prompt)
    with _task_deps(video, llm, perception, bank, store, on_progress) as deps:
        return localize_query(
            deps.timeline,
            query,
            **_retrieval(deps),
            prompt=template,
            context=context,
            refine=refine,
        )
