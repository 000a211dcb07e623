"""Typed records of the LLM layer: requests, sampling, structured output, responses, usage.

Everything that crosses the backend boundary is a pydantic model with ``extra="forbid"`` (a typo in
a sampling option is an error, not a silently ignored field), so a request can be hashed for the
response cache and a response can be stored and reloaded as JSON.
"""

from __future__ import annotations

import copy
import threading
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vidagent.core.records import ChatMessage
from vidagent.llm.errors import LLMOutputError

ModelT = TypeVar("ModelT", bound=BaseModel)


class LLMRecord(BaseModel):
    """Base of the LLM records: unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid")


class SamplingParams(LLMRecord):
    """How to sample. ``temperature == 0`` is greedy; a ``seed`` makes sampling reproducible."""

    temperature: float = Field(default=0.0, ge=0.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(default=256, ge=1)
    seed: int | None = None
    n: int = Field(default=1, ge=1, description="Number of candidates to return")
    stop: list[str] | None = None

    @property
    def deterministic(self) -> bool:
        """True when the same request always gives the same output (greedy, or seeded)."""
        return self.temperature == 0.0 or self.seed is not None


class StructuredOutput(LLMRecord):
    """A constraint on the output: one of a choice list, a JSON schema, or a regex.

    ``kind`` says which field is set; exactly that one must be. Build with :meth:`from_choices`,
    :meth:`from_schema`, :meth:`from_model` or :meth:`from_regex`. JSON output is always compact
    (servers started by :mod:`vidagent.testing.vllm_server` disable free whitespace).
    """

    kind: Literal["choice", "json", "regex"]
    choices: list[str] | None = None
    json_schema: dict[str, Any] | None = None
    regex: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> StructuredOutput:
        given = {
            "choice": self.choices is not None,
            "json": self.json_schema is not None,
            "regex": self.regex is not None,
        }
        if not given[self.kind] or sum(given.values()) != 1:
            raise ValueError(f"structured output of kind {self.kind!r} must set only its own field")
        if self.choices is not None and (not self.choices or "" in self.choices):
            raise ValueError(f"choices must be non-empty strings, got {self.choices!r}")
        return self

    @classmethod
    def from_choices(cls, choices: list[str]) -> StructuredOutput:
        """The output is exactly one of ``choices``."""
        return cls(kind="choice", choices=list(choices))

    @classmethod
    def from_regex(cls, pattern: str) -> StructuredOutput:
        """The whole output matches ``pattern``."""
        return cls(kind="regex", regex=pattern)

    @classmethod
    def from_schema(cls, schema: dict[str, Any]) -> StructuredOutput:
        """The output is JSON that validates against ``schema`` (used as given)."""
        return cls(kind="json", json_schema=schema)

    @classmethod
    def from_model(cls, model: type[BaseModel]) -> StructuredOutput:
        """The output is JSON for ``model``.

        Objects get ``additionalProperties: false`` unless the model says otherwise: pydantic would
        ignore stray keys anyway, and a constrained decoder must not spend tokens on them.
        """
        schema = copy.deepcopy(model.model_json_schema())
        _close_objects(schema)
        return cls(kind="json", json_schema=schema)

    def as_vllm(self) -> dict[str, Any]:
        """The ``structured_outputs`` value of a vLLM request (never the old ``guided_*``)."""
        if self.kind == "choice":
            return {"choice": self.choices}
        if self.kind == "json":
            return {"json": self.json_schema}
        return {"regex": self.regex}


def _close_objects(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node:
            node.setdefault("additionalProperties", False)
        for value in node.values():
            _close_objects(value)
    elif isinstance(node, list):
        for value in node:
            _close_objects(value)


class LLMRequest(LLMRecord):
    """One call: chat messages, sampling, an optional output constraint and model override."""

    messages: list[ChatMessage] = Field(min_length=1)
    sampling: SamplingParams = Field(default_factory=SamplingParams)
    structured: StructuredOutput | None = None
    model: str | None = Field(default=None, description="None: the backend's model")

    @classmethod
    def of(
        cls,
        prompt: str,
        *,
        system: str | None = None,
        structured: StructuredOutput | None = None,
        **sampling: Any,
    ) -> LLMRequest:
        """Shorthand for a one-turn request: ``LLMRequest.of("Hi", max_tokens=8)``."""
        messages = [ChatMessage(role="system", content=system)] if system else []
        messages.append(ChatMessage(role="user", content=prompt))
        return cls(messages=messages, sampling=SamplingParams(**sampling), structured=structured)


class Usage(LLMRecord):
    """Tokens of one call, as the backend counted them (all ``n`` candidates together)."""

    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class LLMResponse(LLMRecord):
    """The ``n`` candidates of one call, with why each stopped and what it cost."""

    texts: list[str] = Field(min_length=1)
    finish_reasons: list[str | None]
    usage: Usage = Field(default_factory=Usage)
    model: str
    cached: bool = False
    latency_s: float = Field(default=0.0, ge=0.0)

    @property
    def text(self) -> str:
        """The first candidate."""
        return self.texts[0]

    def parse(self, model: type[ModelT], index: int = 0) -> ModelT:
        """Candidate ``index`` validated as JSON for ``model`` (else :class:`LLMOutputError`)."""
        try:
            return model.model_validate_json(self.texts[index])
        except ValidationError as err:
            raise LLMOutputError(
                f"output {self.texts[index][:200]!r} (finish_reason={self.finish_reasons[index]}) "
                f"is not a valid {model.__name__}: {err.errors()[0]['msg']}"
            ) from err


class UsageTotals(LLMRecord):
    """What a run has spent so far. Cached calls cost no tokens and are counted apart."""

    calls: int = 0
    cached_calls: int = 0
    failed_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class UsageMeter:
    """Thread-safe running totals of token usage for one run (shared by every call of a client)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals = UsageTotals()

    def record(self, response: LLMResponse) -> None:
        """Count one finished call; a cache hit adds a call but no tokens."""
        with self._lock:
            t = self._totals
            t.calls += 1
            if response.cached:
                t.cached_calls += 1
            else:
                t.prompt_tokens += response.usage.prompt_tokens
                t.completion_tokens += response.usage.completion_tokens

    def record_failure(self) -> None:
        """Count one call that ended with an error."""
        with self._lock:
            self._totals.failed_calls += 1

    def totals(self) -> UsageTotals:
        """A snapshot of the totals."""
        with self._lock:
            return self._totals.model_copy()
