"""Answer questions about a video: open-ended, or multiple choice (optionally self-consistent).

Guided decoding makes every output valid, so nothing is parsed by hand:

- **Multiple choice**: the output is constrained to the option letters (``choice``); with
  ``samples > 1`` the model is sampled ``samples`` times (temperature > 0, seeded) and the
  majority letter wins (ties: the letter seen first). Cited segments are the shown segments most
  relevant to the question and options (up to ``max_citations``; by relevance, in time order),
  since a one-letter answer cannot cite anything itself.
- **Open-ended**: the output is a JSON object ``{"answer": str, "segments": [token, ...]}`` whose
  segment items are an enum of the tokens of the segments the prompt showed (1 to
  ``max_citations`` of them), so a citation always names a real, shown segment.

Each is a spec (:class:`ChoiceAnswerSpec`, :class:`OpenAnswerSpec`) run by
:mod:`vidagent.tasks.pipeline`; :func:`answer_question` is the plain-function entry point.
"""

from __future__ import annotations

import json
import string
from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Unpack

from pydantic import Field

from vidagent.core.records import Record, Timeline
from vidagent.llm.types import SamplingParams, StructuredOutput
from vidagent.tasks.pipeline import Focus, PromptCall, TaskContext, TaskDeps, TaskKwargs, run_task
from vidagent.tasks.run import RunRecord, TaskName
from vidagent.tasks.steps import CallOutcome, TaskError

LETTERS = string.ascii_uppercase


class Citation(Record):
    """A segment the answer relies on."""

    token: str
    index: int
    start: float
    end: float


class AnswerResult(Record):
    """The answer, what it cites, and the run that produced it."""

    question: str
    options: list[str] = Field(default_factory=list)
    answer: str
    letter: str | None = None
    votes: dict[str, int] = Field(default_factory=dict)
    citations: list[Citation]
    cited_by: Literal["model", "relevance"]
    run: RunRecord


def citation(timeline: Timeline, index: int) -> Citation:
    seg = timeline.segments[index]
    return Citation(token=seg.token, index=seg.index, start=seg.start, end=seg.end)


def open_answer_schema(tokens: list[str], max_citations: int, max_chars: int) -> dict[str, Any]:
    """JSON schema of an open answer citing 1..max_citations of ``tokens``."""
    return {
        "type": "object",
        "properties": {
            "answer": {"type": "string", "minLength": 1, "maxLength": max_chars},
            "segments": {
                "type": "array",
                "items": {"type": "string", "enum": tokens},
                "minItems": 1,
                "maxItems": max(1, min(max_citations, len(tokens))),
            },
        },
        "required": ["answer", "segments"],
        "additionalProperties": False,
    }


@dataclass(frozen=True)
class _QuestionSpec:
    """What both answer specs share: the question, validation, focus, variables and sampling.

    ``samples > 1`` samples the model that many times (temperature 0.7 unless given, seeded) and
    the majority answer wins; ``samples == 1`` is greedy unless ``temperature`` says otherwise.
    """

    question: str
    options: tuple[str, ...] = ()
    samples: int = 1
    temperature: float | None = None
    seed: int = 0
    max_citations: int = 3

    task: ClassVar[TaskName] = "answer"
    examples_task: ClassVar[str] = "qa"
    example_sets: ClassVar[int] = 1

    def __post_init__(self) -> None:
        if len(self.options) > len(LETTERS):
            raise TaskError(f"at most {len(LETTERS)} options, got {len(self.options)}")
        if self.samples < 1:
            raise TaskError(f"samples must be >= 1, got {self.samples}")
        if not self.question.strip():
            raise TaskError("the question is empty")

    @property
    def letters(self) -> list[str]:
        return list(LETTERS[: len(self.options)])

    def focus(self, timeline: Timeline) -> Focus:
        return Focus(query=self.question, search=" ".join([self.question, *self.options]))

    def variables(self, ctx: TaskContext) -> dict[str, object]:
        options = [
            {"letter": x, "text": t} for x, t in zip(self.letters, self.options, strict=True)
        ]
        return {
            "timeline": ctx.text,
            "question": self.question,
            "options": options,
            "examples": ctx.run.examples,
        }

    def sampling(self, max_tokens: int) -> SamplingParams:
        temp = self.temperature
        if temp is None:
            temp = 0.7 if self.samples > 1 else 0.0
        return SamplingParams(
            temperature=temp, n=self.samples, seed=self.seed, max_tokens=max_tokens
        )


@dataclass(frozen=True)
class ChoiceAnswerSpec(_QuestionSpec):
    """Multiple choice: one option letter (``choice`` constraint), cited by relevance."""

    prompt_name: ClassVar[str] = "qa_choice"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.options:
            raise TaskError("a multiple-choice question needs options")

    def requests(self, ctx: TaskContext) -> list[PromptCall]:
        structured = StructuredOutput.from_choices(self.letters)
        return [PromptCall(self.variables(ctx), structured, self.sampling(4))]

    def result(self, ctx: TaskContext, outcomes: list[CallOutcome]) -> AnswerResult:
        response = ctx.sole_response(outcomes)
        letters = self.letters
        votes = Counter(t.strip() for t in response.texts)
        letter = max(votes, key=lambda x: (votes[x], -response.texts.index(x)))
        if letter not in letters:
            raise TaskError(f"answer: the LLM returned {letter!r}, not one of {letters}")
        combined = ctx.relevance.combined
        order = sorted(ctx.run.segments_shown, key=lambda i: -(combined[i] if combined else 0.0))
        cited = sorted(order[: self.max_citations])
        return AnswerResult(
            question=self.question,
            options=list(self.options),
            answer=self.options[letters.index(letter)],
            letter=letter,
            votes=dict(votes),
            citations=[citation(ctx.timeline, i) for i in cited],
            cited_by="relevance",
            run=ctx.run,
        )


@dataclass(frozen=True)
class OpenAnswerSpec(_QuestionSpec):
    """Open-ended: a JSON answer citing shown segments by token, of at most ``max_answer_chars``."""

    max_answer_chars: int = 200

    prompt_name: ClassVar[str] = "qa_open"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.options:
            raise TaskError("an open question takes no options (use ChoiceAnswerSpec)")

    def requests(self, ctx: TaskContext) -> list[PromptCall]:
        tokens = ctx.tokens
        schema = open_answer_schema(tokens, self.max_citations, self.max_answer_chars)
        bound = self.max_answer_chars * 6 + self.max_citations * (max(map(len, tokens)) + 3) + 40
        return [
            PromptCall(
                self.variables(ctx), StructuredOutput.from_schema(schema), self.sampling(bound)
            )
        ]

    def result(self, ctx: TaskContext, outcomes: list[CallOutcome]) -> AnswerResult:
        response = ctx.sole_response(outcomes)
        tokens = ctx.tokens
        parsed = [_parse_open(text, tokens) for text in response.texts]
        good = [p for p in parsed if p is not None]
        if not good:
            reasons = ", ".join(str(r) for r in response.finish_reasons)
            raise TaskError(
                f"answer: no valid JSON answer in {len(parsed)} output(s) "
                f"(finish_reason {reasons}): {response.texts[0][:120]!r}"
            )
        votes = Counter(p[0] for p in good)
        text, cited_tokens = next(p for p in good if p[0] == votes.most_common(1)[0][0])
        indexes = sorted({ctx.timeline.by_token(t).index for t in cited_tokens})
        return AnswerResult(
            question=self.question,
            answer=text,
            votes=dict(votes) if self.samples > 1 else {},
            citations=[citation(ctx.timeline, i) for i in indexes],
            cited_by="model",
            run=ctx.run,
        )


def answer_question(
    timeline: Timeline,
    question: str,
    options: list[str] | None = None,
    *,
    samples: int = 1,
    temperature: float | None = None,
    seed: int = 0,
    max_citations: int = 3,
    max_answer_chars: int = 200,
    **deps: Unpack[TaskKwargs],
) -> AnswerResult:
    """Answer ``question`` (multiple choice when ``options`` are given) about ``timeline``.

    ``deps``: ``llm`` (required), ``bank``, ``store``, ``query_embedder``, ``text_embedder``,
    ``prompt``, ``context`` (:class:`~vidagent.tasks.pipeline.TaskKwargs`). The same run as
    ``run_task(spec, timeline, deps)`` with a :class:`ChoiceAnswerSpec` (options given) or an
    :class:`OpenAnswerSpec`.
    """
    task_deps = TaskDeps.from_kwargs(deps, "answer_question")  # a keyword typo first, as before
    spec: ChoiceAnswerSpec | OpenAnswerSpec
    if options:
        spec = ChoiceAnswerSpec(
            question,
            tuple(options),
            samples=samples,
            temperature=temperature,
            seed=seed,
            max_citations=max_citations,
        )
    else:
        spec = OpenAnswerSpec(
            question,
            samples=samples,
            temperature=temperature,
            seed=seed,
            max_citations=max_citations,
            max_answer_chars=max_answer_chars,
        )
    return run_task(spec, timeline, task_deps)


def _parse_open(text: str, tokens: list[str]) -> tuple[str, list[str]] | None:
    """``(answer, tokens)`` of a valid open answer, else None (e.g. cut by max_tokens)."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("answer"), str):
        return None
    cited = data.get("segments")
    if not isinstance(cited, list) or not cited or not all(t in tokens for t in cited):
        return None
    return data["answer"].strip(), list(dict.fromkeys(cited))
