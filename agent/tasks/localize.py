"""Temporal localization: the [start, end] seconds of the moment a text query describes.

1. The LLM names the first and last segment: a JSON object ``{"start": token, "end": token}``
   whose values are enums of the tokens the prompt showed, so they always name real segments.
2. Tokens map to seconds: the start token's start and the end token's end; if the end segment is
   before the start segment the two are swapped.
3. Refinement by the similarity of the query's embedding to each segment (visual embeddings in the
   perception embedder's space when available, else caption text; see
   :func:`agent.tasks.context.segment_relevance`). Scores are min-max scaled over the video to
   [0, 1]. The span then grows one neighbouring segment at a time while the neighbour scores at
   least ``extend_at`` (default 0.8, i.e. close to the peak), and shrinks from either edge while
   the edge segment scores below ``shrink_below`` (default 0.2) and another segment remains.
   Spans are unions of whole segments, so ``0 <= start < end <= duration`` always holds.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from agent.llm.backend import LLMClient
from agent.llm.types import SamplingParams, StructuredOutput
from agent.prompting import PromptTemplate, load_prompt
from agent.records import Record, Timeline
from agent.tasks.context import (
    ContextOptions,
    QueryEmbedder,
    TaskError,
    TextEmbedderLike,
    new_run,
    pick_examples,
    segment_relevance,
    single_call,
    timeline_text,
    video_sources,
)
from agent.tasks.run import RunRecord


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


def localize_query(
    timeline: Timeline,
    query: str,
    *,
    llm: LLMClient,
    bank: Any = None,
    store: Any = None,
    query_embedder: QueryEmbedder | None = None,
    text_embedder: TextEmbedderLike | None = None,
    prompt: PromptTemplate | None = None,
    context: ContextOptions | None = None,
    refine: bool = True,
    extend_at: float = 0.8,
    shrink_below: float = 0.2,
) -> LocalizationResult:
    """Where in ``timeline`` ``query`` happens, as [start, end] seconds."""
    opts = context or ContextOptions()
    if not query.strip():
        raise TaskError("the localization query is empty")
    template = prompt or load_prompt("localize")
    run = new_run("localize", timeline, query, template)
    with run.step("relevance"):
        relevance = segment_relevance(
            timeline, query, store=store, query_embedder=query_embedder, text_embedder=text_embedder
        )
    run.relevance = relevance.combined
    with run.step("render"):
        rendered = timeline_text(timeline, opts, relevance)
    run.segments_shown = rendered.shown
    with run.step("examples"):
        run.examples = pick_examples(
            bank, query, opts, task="localize", exclude_sources=video_sources(timeline)
        )
    with run.step("prompt"):
        messages = template.render(
            {"timeline": rendered.text, "query": query, "examples": run.examples}
        )
    tokens = [timeline.segments[i].token for i in rendered.shown]
    bound = 2 * max(len(t) for t in tokens) + 32
    response = single_call(
        llm,
        messages,
        StructuredOutput.from_schema(span_schema(tokens)),
        SamplingParams(temperature=0.0, max_tokens=bound),
        run,
    )
    with run.step("parse"):
        start_tok, end_tok = _parse_span(response.text, tokens, response.finish_reasons[0])
        first, last = timeline.by_token(start_tok).index, timeline.by_token(end_tok).index
        swapped = last < first
        if swapped:
            first, last = last, first
        scores = _scaled_scores(relevance)
        new_first, new_last = (
            refine_span(first, last, scores, extend_at=extend_at, shrink_below=shrink_below)
            if refine
            else (first, last)
        )
    segs = timeline.segments
    return LocalizationResult(
        query=query,
        start=segs[new_first].start,
        end=segs[new_last].end,
        start_token=segs[new_first].token,
        end_token=segs[new_last].token,
        llm_start_token=start_tok,
        llm_end_token=end_tok,
        swapped=swapped,
        refined=(new_first, new_last) != (first, last),
        scores=scores,
        run=run,
    )


def _scaled_scores(relevance: Any) -> list[float] | None:
    raw = relevance.visual if relevance.visual is not None else relevance.text
    if raw is None:
        return None
    low, high = min(raw), max(raw)
    if high - low < 1e-9:
        return [1.0] * len(raw)
    return [round((v - low) / (high - low), 6) for v in raw]


def _parse_span(text: str, tokens: list[str], finish: str | None) -> tuple[str, str]:
    import json

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
