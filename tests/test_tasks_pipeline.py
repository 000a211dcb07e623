"""The shared task pipeline: specs, the dependency bundle, and the batch split at the LLM call.

A scripted backend stands in for the LLM here (what these tests check is what the pipeline sends
and how it routes results, not model output; the real-model flows are in test_tasks_hf.py and
test_tasks_vllm.py). It answers every constraint with a valid output, counts requests in flight,
and fails the requests whose prompt carries ``FAIL``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import pytest
from test_tasks_support import labelled_timeline

from vidagent.core.records import Timeline
from vidagent.llm import LLMClient
from vidagent.llm.errors import LLMConnectionError
from vidagent.llm.types import LLMRequest, LLMResponse, SamplingParams, StructuredOutput, Usage
from vidagent.prompts.loader import PromptTemplate
from vidagent.tasks import (
    AnswerResult,
    AnticipateSpec,
    ChoiceAnswerSpec,
    Focus,
    LocalizationResult,
    LocalizeSpec,
    OpenAnswerSpec,
    PromptCall,
    TaskContext,
    TaskDeps,
    TaskError,
    TaskOptions,
    answer_question,
    finish_task,
    localize_query,
    prepare_task,
    run_task,
    run_tasks,
)
from vidagent.tasks.run import TaskName
from vidagent.tasks.steps import CallOutcome


class ScriptedLLM:
    """A backend whose outputs satisfy the request's constraint; ``FAIL`` in a prompt fails it."""

    def __init__(self) -> None:
        self.requests: list[LLMRequest] = []
        self.in_flight = 0
        self.peak = 0

    async def model_name(self) -> str:
        return "scripted"

    async def generate(self, request: LLMRequest) -> LLMResponse:
        self.requests.append(request)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(0.01)
            if any("FAIL" in m.content for m in request.messages):
                raise LLMConnectionError(["http://scripted"], 1, "scripted failure")
            text = self.output(request.structured)
            n = request.sampling.n
            return LLMResponse(
                texts=[text] * n,
                finish_reasons=["stop"] * n,
                usage=Usage(prompt_tokens=5, completion_tokens=2),
                model="scripted",
            )
        finally:
            self.in_flight -= 1

    @staticmethod
    def output(structured: StructuredOutput | None) -> str:
        if structured is None:
            return "take knife, cut onion"
        if structured.choices:
            return structured.choices[-1]
        if structured.regex:
            return "7"
        props = (structured.json_schema or {})["properties"]
        if "start" in props:
            enum = props["start"]["enum"]
            return json.dumps({"start": enum[-1], "end": enum[0]})
        if "answer" in props:
            return json.dumps({"answer": "it", "segments": props["segments"]["items"]["enum"][:1]})
        item, z = props["actions"]["items"]["properties"], props["actions"]["minItems"]
        pair = {"verb": item["verb"]["enum"][0], "noun": item["noun"]["enum"][0]}
        return json.dumps({"actions": [pair] * z})

    async def close(self) -> None:
        pass


def make_timeline(path: str = "kitchen.mp4", labelled: bool = True) -> Timeline:
    """Six segments; each holds ``thing i`` unless the timeline is bare (nothing perceived)."""
    if not labelled:
        return labelled_timeline([""] * 6, path=path)
    captions = [f"a person holds thing {i}" for i in range(6)]
    return labelled_timeline(captions, [f"take thing{i}" for i in range(6)], path=path)


@pytest.fixture
def scripted() -> Iterator[tuple[LLMClient, ScriptedLLM]]:
    backend = ScriptedLLM()
    client = LLMClient(backend, max_concurrency=8)
    yield client, backend
    client.close()


def sent_text(request: LLMRequest) -> str:
    return "\n".join(m.content for m in request.messages)


@dataclass(frozen=True)
class CountSpec:
    """A fourth task written only as a spec: how many segments show ``thing``, as digits."""

    thing: str

    task: ClassVar[TaskName] = "answer"
    prompt_name: ClassVar[str] = "unused: the tests pass a prompt"
    examples_task: ClassVar[str] = "qa"
    example_sets: ClassVar[int] = 1

    def focus(self, timeline: Timeline) -> Focus:
        return Focus(query=f"count {self.thing}", search=self.thing)

    def requests(self, ctx: TaskContext) -> list[PromptCall]:
        variables = {"timeline": ctx.text, "thing": self.thing}
        sampling = SamplingParams(temperature=0.0, max_tokens=3)
        return [PromptCall(variables, StructuredOutput.from_regex(r"[0-9]{1,2}"), sampling)]

    def result(self, ctx: TaskContext, outcomes: list[CallOutcome]) -> int:
        return int(ctx.sole_response(outcomes).text)


COUNT_PROMPT = PromptTemplate(name="count", user="{{ timeline }}\nHow many show {{ thing }}?")


def test_a_new_task_is_only_a_spec_and_the_pipeline_sends_its_prompt_and_constraint(
    scripted: tuple[LLMClient, ScriptedLLM],
) -> None:
    llm, backend = scripted
    timeline = make_timeline()
    deps = TaskDeps(llm=llm, prompt=COUNT_PROMPT, options=TaskOptions(max_timeline_chars=200))
    assert run_task(CountSpec("thing 3"), timeline, deps) == 7
    [request] = backend.requests
    assert request.structured == StructuredOutput.from_regex(r"[0-9]{1,2}")
    assert request.sampling.max_tokens == 3
    text = sent_text(request)
    assert text.endswith("How many show thing 3?") and "<seg_0>" in text


def test_prepare_sends_nothing_and_finish_gives_what_run_task_gives(
    scripted: tuple[LLMClient, ScriptedLLM],
) -> None:
    llm, backend = scripted
    timeline = make_timeline()
    spec = LocalizeSpec("thing 2 is held", refine=False)
    deps = TaskDeps(llm=llm, options=TaskOptions(max_timeline_chars=300))
    prepared = prepare_task(spec, timeline, deps)
    assert backend.requests == [] and prepared.run.calls == []
    assert set(prepared.run.timings) == {"relevance", "render", "examples", "prompt"}
    [request] = prepared.requests
    tokens = [timeline.segments[i].token for i in prepared.run.segments_shown]
    assert request.structured is not None
    assert request.structured.json_schema["properties"]["start"]["enum"] == tokens  # type: ignore[index]
    assert "thing 2 is held" in sent_text(request)

    batched = finish_task(prepared, llm.run_many(prepared.requests))
    direct = run_task(spec, timeline, deps)
    assert backend.requests == [request, request]
    assert batched.model_dump(exclude={"run"}) == direct.model_dump(exclude={"run"})
    assert batched.run.calls[0].messages == direct.run.calls[0].messages
    shown = prepared.run.segments_shown
    assert 1 < len(shown) < len(timeline.segments)  # a partial view: the budget is honoured
    first, last = timeline.segments[shown[0]], timeline.segments[shown[-1]]
    assert (batched.start, batched.end, batched.swapped) == (first.start, last.end, True)


def test_run_tasks_sends_every_task_at_once_and_a_failure_stays_in_its_slot(
    scripted: tuple[LLMClient, ScriptedLLM],
) -> None:
    llm, backend = scripted
    deps = TaskDeps(llm=llm, options=TaskOptions(k=0))
    good, bare = make_timeline(), make_timeline(path="bare.mp4", labelled=False)
    jobs = [
        (ChoiceAnswerSpec("What is held?", ("thing 1", "thing 2")), good),
        (ChoiceAnswerSpec("What is held? FAIL", ("a", "b")), good),  # its LLM call fails
        (AnticipateSpec(("take",), ("thing0",), z=2, k=1), bare),  # nothing observed: no call
        (LocalizeSpec("thing 4"), good),
        (AnticipateSpec(("take",), ("thing0",), observed=2, z=2, k=3, schedule="examples"), good),
    ]
    results = run_tasks(jobs, deps)
    assert len(backend.requests) == 6 and backend.peak == 6  # one batch, all in flight together
    choice, failed, unobserved, span, future = results
    assert isinstance(choice, AnswerResult) and choice.letter == "B"
    assert isinstance(failed, TaskError) and "scripted failure" in str(failed)
    assert isinstance(unobserved, TaskError) and "bare.mp4: the observed segments" in str(
        unobserved
    )
    assert isinstance(span, LocalizationResult) and span.run.calls[0].texts
    assert not isinstance(future, TaskError) and len(future.candidates) == 3
    assert [len(r.run.calls) for r in (choice, span, future)] == [1, 1, 3]
    assert all("llm" in r.run.timings for r in (choice, span, future))


def test_the_plain_functions_send_what_their_specs_send(
    scripted: tuple[LLMClient, ScriptedLLM],
) -> None:
    llm, backend = scripted
    timeline = make_timeline()
    options = TaskOptions(max_timeline_chars=180)
    plain = answer_question(
        timeline, "Which?", ["x", "y", "z"], llm=llm, context=options, samples=3
    )
    spec = ChoiceAnswerSpec("Which?", ("x", "y", "z"), samples=3)
    via_spec = run_task(spec, timeline, TaskDeps(llm=llm, options=options))
    first, second = backend.requests
    assert first == second and first.sampling.n == 3 and first.sampling.temperature == 0.7
    assert plain.model_dump(exclude={"run"}) == via_spec.model_dump(exclude={"run"})
    localize_query(timeline, "thing 1", llm=llm, refine=False)
    assert (
        backend.requests[-1]
        == prepare_task(
            LocalizeSpec("thing 1", refine=False), timeline, TaskDeps(llm=llm)
        ).requests[0]
    )


def test_the_plain_functions_reject_unknown_and_missing_keywords_like_python(
    scripted: tuple[LLMClient, ScriptedLLM],
) -> None:
    llm, backend = scripted
    timeline = make_timeline()
    with pytest.raises(TypeError, match=r"^answer_question\(\) got an unexpected keyword .*'stor'"):
        answer_question(timeline, "q", llm=llm, stor=None)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"^localize_query\(\) missing 1 required .*'llm'"):
        localize_query(timeline, "q")  # type: ignore[call-arg]
    assert backend.requests == []


def test_specs_check_their_inputs_when_built() -> None:
    with pytest.raises(TaskError, match="needs options"):
        ChoiceAnswerSpec("q")
    with pytest.raises(TaskError, match="takes no options"):
        OpenAnswerSpec("q", ("a",))
    with pytest.raises(TaskError, match="samples must be >= 1, got 0"):
        OpenAnswerSpec("q", samples=0)
    with pytest.raises(TaskError, match="the localization query is empty"):
        LocalizeSpec(" ")
    with pytest.raises(TaskError, match="z and k must be >= 1, got z=0, k=5"):
        AnticipateSpec(("cut",), ("onion",), z=0)
    assert AnticipateSpec(("cut",), ("onion",), k=4, schedule="examples").example_sets == 4
    assert AnticipateSpec(("cut",), ("onion",), k=4).example_sets == 1
