"""The three things users ask of a video: answer, anticipate, localize.

Each task is a plain function over a perceived :class:`~agent.records.Timeline` and its
dependencies (an :class:`~agent.llm.LLMClient`, an optional example bank, embedders, the
perception store): relevance -> timeline text -> in-context examples -> prompt -> LLM with guided
decoding -> a typed result carrying its :class:`RunRecord` (evidence, raw outputs, usage, timings).
"""

from agent.tasks.answer import AnswerResult, Citation, answer_question
from agent.tasks.anticipate import (
    ActionPair,
    AnticipationResult,
    Candidate,
    anticipate_actions,
    lta_schema,
    map_to_taxonomy,
)
from agent.tasks.context import (
    DEFAULT_LLM_MODEL,
    ContextOptions,
    Relevance,
    TaskError,
    segment_relevance,
)
from agent.tasks.localize import LocalizationResult, localize_query, refine_span
from agent.tasks.run import ExampleUsed, LLMCall, RunRecord

__all__ = [
    "DEFAULT_LLM_MODEL",
    "ActionPair",
    "AnswerResult",
    "AnticipationResult",
    "Candidate",
    "Citation",
    "ContextOptions",
    "ExampleUsed",
    "LLMCall",
    "LocalizationResult",
    "Relevance",
    "RunRecord",
    "TaskError",
    "answer_question",
    "anticipate_actions",
    "localize_query",
    "lta_schema",
    "map_to_taxonomy",
    "refine_span",
    "segment_relevance",
]
