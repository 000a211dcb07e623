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
"""

from __future__ import annotations

import json
import string
from collections import Counter
from typing import Any, Literal

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


def answer_question(
    timeline: Timeline,
    question: str,
    options: list[str] | None = None,
    *,
    llm: LLMClient,
    bank: Any = None,
    store: Any = None,
    query_embedder: QueryEmbedder | None = None,
    text_embedder: TextEmbedderLike | None = None,
    prompt: PromptTemplate | None = None,
    context: ContextOptions | None = None,
    samples: int = 1,
    temperature: float | None = None,
    seed: int = 0,
    max_citations: int = 3,
    max_answer_chars: int = 200,
) -> AnswerResult:
    """Answer ``question`` (multiple choice when ``options`` are given) about ``timeline``."""
    opts = context or ContextOptions()
    choices = list(options or [])
    if len(choices) > len(LETTERS):
        raise TaskError(f"at most {len(LETTERS)} options, got {len(choices)}")
    if samples < 1:
        raise TaskError(f"samples must be >= 1, got {samples}")
    if not question.strip():
        raise TaskError("the question is empty")
    template = prompt or load_prompt("qa_choice" if choices else "qa_open")
    run = new_run("answer", timeline, question, template)
    query = " ".join([question, *choices])
    with run.step("relevance"):
        relevance = segment_relevance(
            timeline,
            query,
            store=store,
            query_embedder=query_embedder,
            text_embedder=text_embedder,
        )
    run.relevance = relevance.combined
    with run.step("render"):
        rendered = timeline_text(timeline, opts, relevance)
    run.segments_shown = rendered.shown
    with run.step("examples"):
        run.examples = pick_examples(
            bank, query, opts, task="qa", exclude_sources=video_sources(timeline)
        )
    letters = list(LETTERS[: len(choices)])
    variables = {
        "timeline": rendered.text,
        "question": question,
        "options": [{"letter": x, "text": t} for x, t in zip(letters, choices, strict=True)],
        "examples": run.examples,
    }
    with run.step("prompt"):
        messages = template.render(variables)
    temp = temperature if temperature is not None else (0.7 if samples > 1 else 0.0)
    tokens = [timeline.segments[i].token for i in rendered.shown]
    if choices:
        structured = StructuredOutput.from_choices(letters)
        sampling = SamplingParams(temperature=temp, n=samples, seed=seed, max_tokens=4)
    else:
        schema = open_answer_schema(tokens, max_citations, max_answer_chars)
        structured = StructuredOutput.from_schema(schema)
        bound = max_answer_chars * 6 + max_citations * (max(map(len, tokens)) + 3) + 40
        sampling = SamplingParams(temperature=temp, n=samples, seed=seed, max_tokens=bound)
    response = single_call(llm, messages, structured, sampling, run)
    with run.step("parse"):
        if choices:
            votes = Counter(t.strip() for t in response.texts)
            letter = max(votes, key=lambda x: (votes[x], -response.texts.index(x)))
            if letter not in letters:
                raise TaskError(f"answer: the LLM returned {letter!r}, not one of {letters}")
            order = sorted(
                rendered.shown,
                key=lambda i: -(relevance.combined[i] if relevance.combined else 0.0),
            )
            cited = sorted(order[:max_citations])
            return AnswerResult(
                question=question,
                options=choices,
                answer=choices[letters.index(letter)],
                letter=letter,
                votes=dict(votes),
                citations=[citation(timeline, i) for i in cited],
                cited_by="relevance",
                run=run,
            )
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
        indexes = sorted({timeline.by_token(t).index for t in cited_tokens})
        return AnswerResult(
            question=question,
            answer=text,
            votes=dict(votes) if samples > 1 else {},
            citations=[citation(timeline, i) for i in indexes],
            cited_by="model",
            run=run,
        )


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
