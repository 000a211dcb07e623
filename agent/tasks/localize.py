"""Temporal localization: the [start, end] seconds of the moment a text query describes.

1. The LLM names the first and last segment: a JSON object ``{"start": token, "end": token}``
   whose values are enums of the tokens the prompt showed, so they always name real segments.
2. Tokens map to seconds: the start token's start and the end token's end; if the end segment is
   before the start segment the two are swapped.
3. Refinement by the similarity of the query's embedding to each segment (visual embeddings in the
   perception embedder's space when available, else caption text; see
   :func:`vidagent.tasks.steps.segment_relevance`). Scores are min-max scaled over the video to
   [0, 1]. The span then grows one neighbouring segment at a time while the neighbour scores at
   least ``extend_at`` (default 0.8, i.e. close to the peak), and shrinks from either edge while
   the edge segment scores below ``shrink_below`` (default 0.2) and another segment remains.
   Spans are unions of whole segments, so ``0 <= start < end <= duration`` always holds.

The task is :class:`LocalizeSpec`, run by :mod:`vidagent.tasks.pipeline`; :func:`localize_query`
is the plain-function entry point.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar, Unpack

from pydantic import Field

from vidagent.core.records import Record, Timeline
from vidagent.llm.types import SamplingParams, StructuredOutput
from vidagent.tasks.pipeline import Focus, PromptCall, TaskContext, TaskDeps, TaskKwargs, run_task
from vidagent.tasks.run import RunRecord, TaskName
from vidagent.tasks.steps import CallOutcome, Relevance, TaskError


class LocalizationResult(Record):
    query: str
    start: float
    end: float
    start_token: str
    end_token: str
    llm_start_token: str
    llm_end_token: str
    swapped: bool = False
    refined: bool = False
    scores: list[float] | None = Field(default=None, description="Scaled similarity per segment")
    run: RunRecord


def span_schema(tokens: list[str]) -> dict[str, Any]:
    """``{"start": token, "end": token}`` with both values enums of ``tokens``."""
    enum = {"type": "string", "enum": tokens}
    return {
        "type": "object",
        "properties": {"start": enum, "end": dict(enum)},
        "required": ["start", "end"],
        "additionalProperties": False,
    }


def refine_span(
    first: int,
    last: int,
    scores: list[float] | None,
    *,
    extend_at: float = 0.8,
    shrink_below: float = 0.2,
) -> tuple[int, int]:
    """Grow/shrink the segment span ``[first, last]`` by scaled similarity (module docstring)."""
    if not scores:
        return first, last
    n = len(scores)
    while first > 0 and scores[first - 1] >= extend_at:
        first -= 1
    while last < n - 1 and scores[last + 1] >= extend_at:
        last += 1
    while first < last and scores[first] < shrink_below:
        first += 1
    while last > first and scores[last] < shrink_below:
        last -= 1
    return first, last


@dataclass(frozen=True)
class LocalizeSpec:
    """Localize ``query``: a greedy ``{"start", "end"}`` token span, refined by similarity."""

    query: str
    refine: bool = True
    extend_at: float = 0.8
    shrink_below: float = 0.2

    task: ClassVar[TaskName] = "localize"
    prompt_name: ClassVar[str] = "localize"
    examples_task: ClassVar[str] = "localize"
    example_sets: ClassVar[int] = 1

    def __post_init__(self) -> None:
        if not self.query.strip():
            raise TaskError("the localization query is empty")

    def focus(self, timeline: Timeline) -> Focus:
        return Focus(query=self.query, search=self.query)

    def requests(self, ctx: TaskContext) -> list[PromptCall]:
        tokens = ctx.tokens
        variables = {"timeline": ctx.text, "query": self.query, "examples": ctx.run.examples}
        bound = 2 * max(len(t) for t in tokens) + 32
        structured = StructuredOutput.from_schema(span_schema(tokens))
        return [
            PromptCall(variables, structured, SamplingParams(temperature=0.0, max_tokens=bound))
        ]

    def result(self, ctx: TaskContext, outcomes: list[CallOutcome]) -> LocalizationResult:
        response = ctx.sole_response(outcomes)
        timeline = ctx.timeline
        start_tok, end_tok = _parse_span(response.text, ctx.tokens, response.finish_reasons[0])
        first, last = timeline.by_token(start_tok).index, timeline.by_token(end_tok).index
        swapped = last < first
        if swapped:
            first, last = last, first
        scores = _scaled_scores(ctx.relevance)
        new_first, new_last = (
            refine_span(
                first, last, scores, extend_at=self.extend_at, shrink_below=self.shrink_below
            )
            if self.refine
            else (first, last)
        )
        segs = timeline.segments
        return LocalizationResult(
            query=self.query,
            start=segs[new_first].start,
            end=segs[new_last].end,
            start_token=segs[new_first].token,
            end_token=segs[new_last].token,
            llm_start_token=start_tok,
            llm_end_token=end_tok,
            swapped=swapped,
            refined=(new_first, new_last) != (first, last),
            scores=scores,
            run=ctx.run,
        )


def localize_query(
    timeline: Timeline,
    query: str,
    *,
    refine: bool = True,
    extend_at: float = 0.8,
    shrink_below: float = 0.2,
    **deps: Unpack[TaskKwargs],
) -> LocalizationResult:
    """Where in ``timeline`` ``query`` happens, as [start, end] seconds.

    ``deps``: ``llm`` (required), ``bank``, ``store``, ``query_embedder``, ``text_embedder``,
    ``prompt``, ``context`` (:class:`~vidagent.tasks.pipeline.TaskKwargs`). The same run as
    ``run_task(LocalizeSpec(query, ...), timeline, TaskDeps(...))``.
    """
    task_deps = TaskDeps.from_kwargs(deps, "localize_query")  # a keyword typo first, as before
    spec = LocalizeSpec(query, refine=refine, extend_at=extend_at, shrink_below=shrink_below)
    return run_task(spec, timeline, task_deps)


def _scaled_scores(relevance: Relevance) -> list[float] | None:
    raw = relevance.visual if relevance.visual is not None else relevance.text
    if raw is None:
        return None
    low, high = min(raw), max(raw)
    if high - low < 1e-9:
        return [1.0] * len(raw)
    return [round((v - low) / (high - low), 6) for v in raw]


def _parse_span(text: str, tokens: list[str], finish: str | None) -> tuple[str, str]:
    try:
        data = json.loads(text)
        start, end = data["start"], data["end"]
    except (ValueError, KeyError, TypeError):
        raise TaskError(
            f"localize: the LLM output is not a span (finish_reason {finish}): {text[:120]!r}"
        ) from None
    if start not in tokens or end not in tokens:
        raise TaskError(f"localize: the LLM named segments not shown: {start!r}, {end!r}")
    return start, end
