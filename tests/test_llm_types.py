"""Records, cache keys, the SQLite response cache and the config/factory of the LLM layer."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, ValidationError

from vidagent.core.errors import ConfigError
from vidagent.llm import (
    LLMClient,
    LLMConfig,
    LLMOutputError,
    LLMRequest,
    LLMResponse,
    ResponseCache,
    SamplingParams,
    StructuredOutput,
    Usage,
    UsageMeter,
    build_backend,
    cache_key,
)
from vidagent.llm.cache import cacheable
from vidagent.llm.config import resolve_backend_name
from vidagent.llm.openai_backend import OpenAIBackend


class Inner(BaseModel):
    tag: Literal["a", "b"]


class Outer(BaseModel):
    name: str
    inner: Inner | None = None


def test_structured_output_sets_exactly_its_own_field() -> None:
    assert StructuredOutput.from_choices(["x", "y"]).as_vllm() == {"choice": ["x", "y"]}
    assert StructuredOutput.from_regex("a+").as_vllm() == {"regex": "a+"}
    with pytest.raises(ValidationError):
        StructuredOutput(kind="choice", regex="a+")
    with pytest.raises(ValidationError):
        StructuredOutput(kind="regex", regex="a", choices=["a"])
    with pytest.raises(ValidationError):
        StructuredOutput.from_choices([])
    with pytest.raises(ValidationError):
        StructuredOutput(kind="json", json_schema={}, extra_field=1)  # type: ignore[call-arg]


def test_from_model_closes_every_object_schema() -> None:
    schema = StructuredOutput.from_model(Outer).json_schema
    assert schema is not None
    assert schema["additionalProperties"] is False
    assert schema["$defs"]["Inner"]["additionalProperties"] is False
    assert "additionalProperties" not in Outer.model_json_schema(), "the model is not modified"


def test_sampling_rejects_typos_and_bad_values() -> None:
    with pytest.raises(ValidationError):
        SamplingParams(temprature=0.5)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        SamplingParams(n=0)
    assert SamplingParams().deterministic
    assert SamplingParams(temperature=1.0, seed=3).deterministic
    assert not SamplingParams(temperature=1.0).deterministic


def test_response_parse_validates_or_names_the_output() -> None:
    ok = LLMResponse(texts=['{"name":"x"}'], finish_reasons=["stop"], model="m")
    assert ok.parse(Outer) == Outer(name="x")
    bad = LLMResponse(texts=['{"name":'], finish_reasons=["length"], model="m")
    with pytest.raises(LLMOutputError, match="finish_reason=length"):
        bad.parse(Outer)


def test_cache_key_changes_with_every_input_that_changes_the_output() -> None:
    base = LLMRequest.of("hi", system="s", max_tokens=8)
    key = cache_key("openai", "tiny", base)
    assert key == cache_key("openai", "tiny", LLMRequest.of("hi", system="s", max_tokens=8))
    variants = [
        cache_key("hf", "tiny", base),
        cache_key("openai", "other", base),
        cache_key("openai", "tiny", LLMRequest.of("hi!", system="s", max_tokens=8)),
        cache_key("openai", "tiny", LLMRequest.of("hi", system="t", max_tokens=8)),
        cache_key("openai", "tiny", LLMRequest.of("hi", system="s", max_tokens=9)),
        cache_key("openai", "tiny", LLMRequest.of("hi", system="s", max_tokens=8, seed=1)),
        cache_key("openai", "tiny", LLMRequest.of("hi", system="s", max_tokens=8, n=2)),
        cache_key(
            "openai",
            "tiny",
            LLMRequest.of(
                "hi", system="s", max_tokens=8, structured=StructuredOutput.from_choices(["a"])
            ),
        ),
    ]
    assert len({key, *variants}) == len(variants) + 1


def test_only_deterministic_requests_are_cacheable() -> None:
    assert cacheable(LLMRequest.of("x"))
    assert cacheable(LLMRequest.of("x", temperature=0.8, seed=0))
    assert not cacheable(LLMRequest.of("x", temperature=0.8))


def test_response_cache_round_trip_and_persistence(tmp_path: Path) -> None:
    response = LLMResponse(
        texts=["a", "b"],
        finish_reasons=["stop", "length"],
        usage=Usage(prompt_tokens=3, completion_tokens=4),
        model="tiny",
        latency_s=1.5,
    )
    cache = ResponseCache(tmp_path)
    assert cache.get("k") is None
    cache.put("k", response)
    cache.close()
    reopened = ResponseCache(tmp_path)
    hit = reopened.get("k")
    assert hit is not None and hit.cached and hit.latency_s == 0.0
    assert hit.model_copy(update={"cached": False, "latency_s": 1.5}) == response
    assert len(reopened) == 1


def test_usage_meter_counts_tokens_of_real_calls_only() -> None:
    meter = UsageMeter()
    usage = Usage(prompt_tokens=10, completion_tokens=5)
    meter.record(LLMResponse(texts=["x"], finish_reasons=["stop"], usage=usage, model="m"))
    meter.record(
        LLMResponse(texts=["x"], finish_reasons=["stop"], usage=usage, model="m", cached=True)
    )
    meter.record_failure()
    totals = meter.totals()
    assert (totals.calls, totals.cached_calls, totals.failed_calls) == (2, 1, 1)
    assert (totals.prompt_tokens, totals.completion_tokens, totals.total_tokens) == (10, 5, 15)


def test_config_rejects_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        LLMConfig(url="http://x")  # type: ignore[call-arg]


def test_auto_backend_prefers_urls_then_vllm_then_hf(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    assert resolve_backend_name(LLMConfig(urls=["http://x"])) == "openai"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    assert resolve_backend_name(LLMConfig()) == "vllm"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert resolve_backend_name(LLMConfig()) == "hf"
    assert resolve_backend_name(LLMConfig(backend="openai")) == "openai"


def test_build_backend_wires_client_cache_and_limits(tmp_path: Path) -> None:
    client = build_backend(
        LLMConfig(urls=["http://h:1", "http://h:2"], max_concurrency=7, max_retries=1)
    )
    assert isinstance(client, LLMClient) and isinstance(client.backend, OpenAIBackend)
    assert client.max_concurrency == 7 and client.backend.max_connections == 7
    assert client.backend.retry.max_retries == 1
    assert client.backend.urls == ["http://h:1/v1", "http://h:2/v1"]
    assert client.cache is not None
    assert client.cache.path.parent.parent == Path(__import__("os").environ["VIDAGENT_HOME"])
    client.close()
    explicit = build_backend(LLMConfig(urls=["http://h:1"], cache_dir=tmp_path))
    assert explicit.cache is not None and explicit.cache.path.parent == tmp_path
    explicit.close()
    assert build_backend(LLMConfig(urls=["http://h:1"], cache=False)).cache is None


def test_build_backend_without_any_llm_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match="no LLM configured"):
        build_backend(LLMConfig())
    with pytest.raises(ConfigError, match="needs a model"):
        build_backend(LLMConfig(backend="vllm"))
