"""The three things users ask of a video: answer, anticipate, localize.

Every task is a small spec (:class:`ChoiceAnswerSpec`, :class:`OpenAnswerSpec`,
:class:`LocalizeSpec`, :class:`AnticipateSpec`: prompt, output constraint, sampling, parse) run by
one pipeline (:func:`run_task`) over a perceived :class:`~vidagent.core.records.Timeline` and its
dependencies bundled as :class:`TaskDeps` (an :class:`~vidagent.llm.LLMClient`, an optional
example bank, embedders, the perception store): relevance -> timeline text -> in-context examples
-> prompt -> LLM with guided decoding -> a typed result carrying its :class:`RunRecord` (evidence,
raw outputs, usage, timings). :func:`answer_question`, :func:`anticipate_actions` and
:func:`localize_query` are the same runs as plain functions; :func:`prepare_task`,
:func:`finish_task` and :func:`run_tasks` split a run at the LLM call for batches.
"""

from vidagent.tasks.answer import (
    AnswerResult,
    ChoiceAnswerSpec,
    Citation,
    OpenAnswerSpec,
    answer_question,
)
from vidagent.tasks.anticipate import (
    ActionPair,
    AnticipateSpec,
    AnticipationResult,
    Candidate,
    anticipate_actions,
    lta_schema,
    map_to_taxonomy,
)
from vidagent.tasks.localize import LocalizationResult, LocalizeSpec, localize_query, refine_span
from vidagent.tasks.pipeline import (
    Focus,
    PreparedTask,
    PromptCall,
    TaskContext,
    TaskDeps,
    TaskSpec,
    finish_task,
    prepare_task,
    run_task,
    run_tasks,
)
from vidagent.tasks.run import ExampleUsed, LLMCall, RunRecord
from vidagent.tasks.steps import (
    DEFAULT_LLM_MODEL,
    CallOutcome,
    Relevance,
    TaskError,
    TaskOptions,
    segment_relevance,
)

__all__ = [
    "DEFAULT_LLM_MODEL",
    "ActionPair",
    "AnswerResult",
    "AnticipateSpec",
    "AnticipationResult",
    "CallOutcome",
    "Candidate",
    "ChoiceAnswerSpec",
    "Citation",
    "ExampleUsed",
    "Focus",
    "LLMCall",
    "LocalizationResult",
    "LocalizeSpec",
    "OpenAnswerSpec",
    "PreparedTask",
    "PromptCall",
    "Relevance",
    "RunRecord",
    "TaskContext",
    "TaskDeps",
    "TaskError",
    "TaskOptions",
    "TaskSpec",
    "answer_question",
    "anticipate_actions",
    "finish_task",
    "localize_query",
    "lta_schema",
    "map_to_taxonomy",
    "prepare_task",
    "refine_span",
    "run_task",
    "run_tasks",
    "segment_relevance",
]
