"""The run record: everything one task run used and produced, dumpable as JSON.

A run is a list of named steps (perceive, relevance, render, examples, prompt, llm, parse) with
their wall times, plus the evidence a user needs to check an answer: the segments shown and cited,
the in-context examples, the exact messages and output constraint sent, the raw LLM outputs and
the token usage. ``result`` holds the task's typed result as JSON; ``error`` is set when the LLM
call failed (a batch runner records it and goes on).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from pydantic import Field, JsonValue

from vidagent.core.records import Record
from vidagent.llm.types import ChatMessage, StructuredOutput, Usage

TaskName = Literal["answer", "anticipate", "localize"]


class ExampleUsed(Record):
    """One in-context example shown in the prompt."""

    id: int
    similarity: float
    video_id: str
    input: str
    target: str


class LLMCall(Record):
    """One request sent to the LLM and what came back (or the error that ended it)."""

    messages: list[ChatMessage]
    structured: StructuredOutput | None = None
    n: int = 1
    temperature: float = 0.0
    texts: list[str] = Field(default_factory=list)
    finish_reasons: list[str | None] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    model: str | None = None
    cached: bool = False
    latency_s: float = 0.0
    error: str | None = None


class RunRecord(Record):
    """One task run, from video to result."""

    task: TaskName
    video: str
    video_hash: str | None = None
    query: str = Field(description="Question, localization query, or observed-actions text")
    prompt: str = Field(description="Prompt file used")
    segments_total: int = 0
    segments_shown: list[int] = Field(default_factory=list)
    relevance: list[float] | None = Field(
        default=None, description="Per-segment relevance to the query (None: not computed)"
    )
    examples: list[ExampleUsed] = Field(default_factory=list)
    calls: list[LLMCall] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    timings: dict[str, float] = Field(default_factory=dict)
    result: dict[str, JsonValue] | None = None
    error: str | None = None

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time a step; repeated names add up."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start

    def add_call(self, call: LLMCall) -> None:
        self.calls.append(call)
        self.usage = Usage(
            prompt_tokens=self.usage.prompt_tokens + call.usage.prompt_tokens,
            completion_tokens=self.usage.completion_tokens + call.usage.completion_tokens,
        )

    def dump(self, **kwargs: Any) -> str:
        """The record as JSON text."""
        return self.model_dump_json(indent=kwargs.pop("indent", 2), **kwargs)
