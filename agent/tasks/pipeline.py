"""The one pipeline every task runs, and the small spec that makes a task a task.

A run goes: focus -> segment relevance -> timeline text within the budget -> in-context examples
(bank, MMR) -> prompt template filled -> LLM call(s) with guided decoding -> parse -> a typed result
carrying its :class:`~vidagent.tasks.run.RunRecord`. The pipeline owns that order, the steps'
timings and the record; a :class:`TaskSpec` supplies only what differs between tasks:

- ``task``, ``prompt_name``, ``examples_task``, ``example_sets``: the record's task name, the
  bundled prompt used without an override, the bank's task of its examples, and how many sets of
  ``options.k`` examples to retrieve (PALM-style anticipation gives each candidate its own set);
- :meth:`TaskSpec.focus`: what the run is about (the recorded query, the text that ranks segments
  and retrieves examples) and whether the prompt shows the timeline or the spec's own segments;
- :meth:`TaskSpec.requests`: per LLM request, the template variables, the output constraint
  (:class:`~vidagent.llm.types.StructuredOutput`: choice, JSON schema or regex) and the sampling;
- :meth:`TaskSpec.result`: the typed result from the recorded calls.

The dependencies travel together as one :class:`TaskDeps`; the plain task functions take them as
the keywords of :class:`TaskKwargs`, declared once here. For batches (evals send many requests
concurrently) the pipeline splits at the call: :func:`prepare_task` builds a task's requests
without sending them, :func:`finish_task` parses their results, and :func:`run_tasks` sends the
requests of many tasks as one batch through the client's concurrency limit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, Protocol, Required, TypedDict, TypeVar

from vidagent.core.records import Timeline
from vidagent.llm.backend import LLMClient, Result
from vidagent.llm.types import LLMRequest, LLMResponse, SamplingParams, StructuredOutput
from vidagent.prompts.loader import PromptTemplate, load_prompt
from vidagent.tasks.run import RunRecord, TaskName
from vidagent.tasks.steps import (
    CallOutcome,
    QueryEmbedder,
    Relevance,
    TaskError,
    TaskOptions,
    TextEmbedderLike,
    new_run,
    pick_examples,
    record_calls,
    segment_relevance,
    timeline_text,
    video_sources,
)

if TYPE_CHECKING:
    from vidagent.retrieval.bank import ExampleBank
    from vidagent.store.perception import PerceptionStore

ResultT = TypeVar("ResultT")
ResultT_co = TypeVar("ResultT_co", covariant=True)


@dataclass(frozen=True)
class TaskDeps:
    """Everything a task run uses besides the video and the task: the LLM client, the example
    bank, the perception store with the query (visual-text) embedder and the text embedder for
    segment relevance, a prompt that overrides the task's bundled one, and the context options.
    One value serves every task of a batch that shares them."""

    llm: LLMClient
    bank: ExampleBank | None = None
    store: PerceptionStore | None = None
    query_embedder: QueryEmbedder | None = None
    text_embedder: TextEmbedderLike | None = None
    prompt: PromptTemplate | None = None
    options: TaskOptions = field(default_factory=TaskOptions)

    @classmethod
    def from_kwargs(cls, kwargs: TaskKwargs, where: str) -> TaskDeps:
        """The deps of a plain task function's keywords; ``where`` names the function in the
        TypeError of an unknown or missing keyword (as Python's own, since ``**`` lets any in)."""
        unknown = [k for k in kwargs if k not in TaskKwargs.__annotations__]
        if unknown:
            raise TypeError(f"{where}() got an unexpected keyword argument {unknown[0]!r}")
        if "llm" not in kwargs:
            raise TypeError(f"{where}() missing 1 required keyword-only argument: 'llm'")
        return cls(
            llm=kwargs["llm"],
            bank=kwargs.get("bank"),
            store=kwargs.get("store"),
            query_embedder=kwargs.get("query_embedder"),
            text_embedder=kwargs.get("text_embedder"),
            prompt=kwargs.get("prompt"),
            options=kwargs.get("context") or TaskOptions(),
        )


class TaskKwargs(TypedDict, total=False):
    """The dependency keywords of :func:`~vidagent.tasks.answer_question` and
    :func:`~vidagent.tasks.localize_query` (``llm`` required, the others default to None):
    :class:`TaskDeps` with the options named ``context``."""

    llm: Required[LLMClient]
    bank: ExampleBank | None
    store: PerceptionStore | None
    query_embedder: QueryEmbedder | None
    text_embedder: TextEmbedderLike | None
    prompt: PromptTemplate | None
    context: TaskOptions | None


@dataclass(frozen=True)
class Focus:
    """What a run is about, decided from the video before any model runs.

    ``query`` is recorded as the run's query; ``search`` ranks the segments and retrieves the
    examples. With ``show_timeline`` the prompt shows the timeline text, its segments kept by
    relevance to ``search`` when the budget is tight; without it the prompt shows ``shown`` (the
    spec renders them itself) and no relevance is computed. ``facts``: the spec's own text taken
    from the video (anticipation: the observed actions and captions), for its later steps.
    """

    query: str
    search: str
    show_timeline: bool = True
    shown: Sequence[int] = ()
    facts: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskContext:
    """What the pipeline found before the prompt: the spec's requests and result read it."""

    timeline: Timeline
    focus: Focus
    options: TaskOptions
    run: RunRecord
    relevance: Relevance
    text: str
    """The timeline text the prompt shows ('' when the focus shows no timeline)."""

    @property
    def tokens(self) -> list[str]:
        """Tokens of the segments the prompt shows, in time order."""
        return [self.timeline.segments[i].token for i in self.run.segments_shown]

    def sole_response(self, outcomes: list[CallOutcome]) -> LLMResponse:
        """The response of a one-request task; its failure is recorded and raised as TaskError."""
        [(call, response)] = outcomes
        if response is None:
            self.run.error = call.error
            raise TaskError(f"{self.run.task}: the LLM call failed: {call.error}")
        return response


@dataclass(frozen=True)
class PromptCall:
    """One LLM request as a spec describes it: template variables, constraint, sampling."""

    variables: Mapping[str, object]
    structured: StructuredOutput | None
    sampling: SamplingParams


class TaskSpec(Protocol[ResultT_co]):
    """A task: its prompt, output constraint, sampling and parse (the module docstring)."""

    @property
    def task(self) -> TaskName: ...

    @property
    def prompt_name(self) -> str: ...

    @property
    def examples_task(self) -> str: ...

    @property
    def example_sets(self) -> int: ...

    def focus(self, timeline: Timeline) -> Focus:
        """What the run is about; raises :class:`TaskError` when the video cannot serve it."""
        ...

    def requests(self, ctx: TaskContext) -> list[PromptCall]:
        """The LLM requests to send (at least one)."""
        ...

    def result(self, ctx: TaskContext, outcomes: list[CallOutcome]) -> ResultT_co:
        """The typed result from the recorded calls; raises :class:`TaskError` when none serves."""
        ...


@dataclass(frozen=True)
class PreparedTask(Generic[ResultT]):
    """A task run up to the LLM call: its context and the requests, not yet sent."""

    spec: TaskSpec[ResultT]
    context: TaskContext
    requests: list[LLMRequest]

    @property
    def run(self) -> RunRecord:
        return self.context.run


def prepare_task(
    spec: TaskSpec[ResultT], timeline: Timeline, deps: TaskDeps
) -> PreparedTask[ResultT]:
    """Run ``spec`` on ``timeline`` up to the LLM call (focus, relevance, render, examples,
    prompt); nothing is sent."""
    options = deps.options
    template = deps.prompt or load_prompt(spec.prompt_name)
    focus = spec.focus(timeline)
    run = new_run(spec.task, timeline, focus.query, template)
    relevance, text = Relevance(), ""
    if focus.show_timeline:
        with run.step("relevance"):
            relevance = segment_relevance(
                timeline,
                focus.search,
                store=deps.store,
                query_embedder=deps.query_embedder,
                text_embedder=deps.text_embedder,
            )
        run.relevance = relevance.combined
        with run.step("render"):
            rendered = timeline_text(timeline, options, relevance)
        run.segments_shown, text = rendered.shown, rendered.text
    else:
        run.segments_shown = list(focus.shown)
    with run.step("examples"):
        run.examples = pick_examples(
            deps.bank,
            focus.search,
            options,
            task=spec.examples_task,
            exclude_sources=video_sources(timeline),
            k=options.k * spec.example_sets,
        )
    context = TaskContext(timeline, focus, options, run, relevance, text)
    calls = spec.requests(context)
    with run.step("prompt"):
        requests = [
            LLMRequest(
                messages=template.render(c.variables), structured=c.structured, sampling=c.sampling
            )
            for c in calls
        ]
    return PreparedTask(spec, context, requests)


def finish_task(prepared: PreparedTask[ResultT], results: Sequence[Result]) -> ResultT:
    """Record the results of ``prepared.requests`` (in order) and parse them into the result."""
    outcomes = record_calls(prepared.run, prepared.requests, results)
    with prepared.run.step("parse"):
        return prepared.spec.result(prepared.context, outcomes)


def run_task(spec: TaskSpec[ResultT], timeline: Timeline, deps: TaskDeps) -> ResultT:
    """Run ``spec`` on ``timeline``: every step, its requests sent as one batch."""
    prepared = prepare_task(spec, timeline, deps)
    with prepared.run.step("llm"):
        results = deps.llm.run_many(prepared.requests)
    return finish_task(prepared, results)


def run_tasks(
    jobs: Sequence[tuple[TaskSpec[ResultT], Timeline]], deps: TaskDeps
) -> list[ResultT | TaskError]:
    """Run many tasks with their requests sent together (concurrently, up to the client's limit).

    Slot ``i`` holds job ``i``'s result, or the :class:`TaskError` that ended it: a job that fails
    does not stop the others. Each run's ``llm`` timing is the wall time of the whole batch.
    Jobs of several tasks type as ``list[tuple[TaskSpec[AnswerResult | LocalizationResult],
    Timeline]]`` (a bare list literal of mixed specs joins to ``object``).
    """
    slots: list[PreparedTask[ResultT] | TaskError] = []
    for spec, timeline in jobs:
        try:
            slots.append(prepare_task(spec, timeline, deps))
        except TaskError as err:
            slots.append(err)
    prepared = [s for s in slots if isinstance(s, PreparedTask)]
    batch = [r for p in prepared for r in p.requests]
    with ExitStack() as timers:
        for p in prepared:
            timers.enter_context(p.run.step("llm"))
        results = deps.llm.run_many(batch) if batch else []
    out: list[ResultT | TaskError] = []
    start = 0
    for slot in slots:
        if isinstance(slot, TaskError):
            out.append(slot)
            continue
        part = results[start : start + len(slot.requests)]
        start += len(slot.requests)
        try:
            out.append(finish_task(slot, part))
        except TaskError as err:
            out.append(err)
    return out
