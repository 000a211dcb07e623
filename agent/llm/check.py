"""``vidagent llm check``: is the server up, what does it serve, does guided decoding constrain?

A server can answer and still ignore structured-output fields (older clients sent ``guided_*``
fields that current vLLM silently drops), so the check does not trust the request: it samples
several candidates at temperature 1 and verifies every one is a valid choice / validates against
the schema. An unconstrained model essentially never produces exactly that by chance.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vidagent.llm.errors import LLMError
from vidagent.llm.openai_backend import OpenAIBackend
from vidagent.llm.retry import RetryPolicy
from vidagent.llm.types import LLMRecord, LLMRequest, StructuredOutput

CHOICES = ["alpha", "bravo", "charlie"]
SAMPLES = 4


class _Probe(BaseModel):
    """The schema the JSON check asks for: small and bounded, so any model can finish it."""

    model_config = ConfigDict(extra="forbid")

    answer: Literal["yes", "no"]
    confidence: int = Field(ge=0, le=10)


class _Verdict(NamedTuple):
    ok: bool
    detail: str


class CheckReport(LLMRecord):
    """What ``check_server`` found. ``None`` for a check that could not run."""

    url: str
    reachable: bool
    error: str | None = None
    models: list[str] = Field(default_factory=list)
    model: str | None = None
    choice_ok: bool | None = None
    choice_detail: str = ""
    json_ok: bool | None = None
    json_detail: str = ""

    @property
    def ok(self) -> bool:
        return self.reachable and bool(self.choice_ok) and bool(self.json_ok)


async def check_server(
    url: str, *, model: str | None = None, api_key: str = "EMPTY", timeout_s: float = 30.0
) -> CheckReport:
    """Probe the OpenAI-compatible server at ``url``; never raises for server problems."""
    backend = OpenAIBackend(
        [url],
        model=model,
        api_key=api_key,
        timeout_s=timeout_s,
        retry=RetryPolicy(max_retries=1, base_delay_s=0.2),
    )
    report = CheckReport(url=backend.urls[0], reachable=False)
    try:
        report.models = await backend.list_models()
        report.reachable = True
        report.model = await backend.model_name()
        report.choice_ok, report.choice_detail = await _check_choice(backend)
        report.json_ok, report.json_detail = await _check_json(backend)
    except LLMError as err:
        report.error = str(err)
    finally:
        await backend.close()
    return report


def _request(prompt: str, structured: StructuredOutput, max_tokens: int) -> LLMRequest:
    return LLMRequest.of(
        prompt, structured=structured, temperature=1.0, max_tokens=max_tokens, n=SAMPLES, seed=7
    )


async def _check_choice(backend: OpenAIBackend) -> _Verdict:
    request = _request(
        f"Answer with one word: {', '.join(CHOICES)}.", StructuredOutput.from_choices(CHOICES), 16
    )
    response = await backend.generate(request)
    bad = [t for t in response.texts if t not in CHOICES]
    if bad:
        return _Verdict(False, f"got {bad[0]!r}, not one of {CHOICES}")
    return _Verdict(True, f"{len(response.texts)}/{len(response.texts)} in {CHOICES}")


async def _check_json(backend: OpenAIBackend) -> _Verdict:
    request = _request(
        'Reply with JSON: {"answer": "yes" or "no", "confidence": 0-10}.',
        StructuredOutput.from_model(_Probe),
        96,
    )
    response = await backend.generate(request)
    for text, reason in zip(response.texts, response.finish_reasons, strict=True):
        try:
            _Probe.model_validate_json(text)
        except ValidationError:
            cut = " (cut at max_tokens)" if reason == "length" else ""
            return _Verdict(False, f"invalid{cut}: {text[:80]!r}")
    return _Verdict(
        True, f"{len(response.texts)}/{len(response.texts)} valid, e.g. {response.texts[0]}"
    )
