"""The LLM layer against a real vLLM OpenAI-compatible server running the tiny random Llama.

The model is random: these tests check structure (valid choice, schema, regex, candidate and token
counts, finish reasons, errors), never content. A recording transport keeps what was sent, so the
tests also check the wire format (``structured_outputs``, never ``guided_*``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
import regex
from langchain_core.messages import AIMessage
from llm_support import spare_vllm_server, tiny_model_dir, vllm_url  # noqa: F401
from pydantic import BaseModel, Field

from vidagent.llm import (
    LLMClient,
    LLMConfig,
    LLMConnectionError,
    LLMRequest,
    LLMResponse,
    LLMTimeoutError,
    ResponseCache,
    RetryPolicy,
    StructuredOutput,
)
from vidagent.llm.langchain import make_chat_model
from vidagent.llm.openai_backend import OpenAIBackend, normalize_url
from vidagent.testing.vllm_server import VLLMServer, free_port

pytestmark = pytest.mark.vllm

CHOICES = ["take", "put", "open", "close"]


class Recording(httpx.AsyncBaseTransport):
    """A real HTTP transport that also keeps the JSON body of every POST."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.bodies: list[dict[str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            self.bodies.append(json.loads(request.content))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class Event(BaseModel):
    verb: Literal["take", "put", "open"]
    count: int = Field(ge=0, le=50)
    done: bool
    note: str = Field(max_length=8)
    tags: list[Literal["hand", "cup"]] = Field(max_length=3)


def client_for(
    urls: list[str], *, transport: httpx.AsyncBaseTransport | None = None, **kwargs: Any
) -> LLMClient:
    limit = kwargs.pop("max_concurrency", 64)
    cache = kwargs.pop("cache", None)
    backend = OpenAIBackend(urls, transport=transport, max_connections=limit, **kwargs)
    return LLMClient(backend, max_concurrency=limit, cache=cache)


def test_64_concurrent_guided_choice_requests_are_all_valid(vllm_url: str) -> None:  # noqa: F811
    wire = Recording()
    client = client_for([vllm_url], transport=wire)
    requests = [
        LLMRequest.of(
            f"Frame {i}: what happens next?",
            structured=StructuredOutput.from_choices(CHOICES),
            temperature=1.0,
            max_tokens=8,
        )
        for i in range(64)
    ]
    results = client.run_many(requests)
    assert all(isinstance(r, LLMResponse) for r in results)
    texts = [r.text for r in results if isinstance(r, LLMResponse)]
    assert len(texts) == 64 and set(texts) <= set(CHOICES) and len(set(texts)) > 1
    # Sent together, not one by one (how many overlap depends on how fast answers come back).
    assert client.backend.stats()[0].peak_outstanding >= 8  # type: ignore[attr-defined]
    assert len(wire.bodies) == 64
    for body in wire.bodies:
        assert body["structured_outputs"] == {"choice": CHOICES}
        assert not [key for key in body if key.startswith("guided")]
    client.close()


def test_json_schema_outputs_always_validate(vllm_url: str) -> None:  # noqa: F811
    client = client_for([vllm_url])
    structured = StructuredOutput.from_model(Event)
    requests = [
        LLMRequest.of(
            "Describe the event as JSON.",
            structured=structured,
            temperature=1.0,
            seed=seed,
            n=4,
            max_tokens=160,
        )
        for seed in range(12)
    ]
    results = client.run_many(requests)
    events = [r.parse(Event, i) for r in results if isinstance(r, LLMResponse) for i in range(4)]
    assert len(events) == 48
    assert len({e.count for e in events}) > 1
    client.close()


def test_regex_is_constrained_and_n5_gives_five_candidates(vllm_url: str) -> None:  # noqa: F811
    client = client_for([vllm_url])
    pattern = r"<seg_[0-9]{1,2}> (yes|no)"
    response = client.generate_sync(
        LLMRequest.of(
            "Which segment?",
            structured=StructuredOutput.from_regex(pattern),
            temperature=1.0,
            n=5,
            max_tokens=24,
        )
    )
    assert len(response.texts) == 5 and len(response.finish_reasons) == 5
    assert all(regex.fullmatch(pattern, t) for t in response.texts)
    assert response.finish_reasons == ["stop"] * 5
    assert response.usage.completion_tokens >= 5 * 3
    client.close()


def test_usage_is_counted_per_call_and_per_run(vllm_url: str) -> None:  # noqa: F811
    client = client_for([vllm_url])
    responses = [
        client.generate_sync(LLMRequest.of(f"Count {i}", temperature=1.0, max_tokens=4 + i))
        for i in range(3)
    ]
    for i, response in enumerate(responses):
        assert response.usage.prompt_tokens > 0
        assert 1 <= response.usage.completion_tokens <= 4 + i
        assert response.latency_s > 0
    totals = client.usage
    assert totals.calls == 3
    assert totals.prompt_tokens == sum(r.usage.prompt_tokens for r in responses)
    assert totals.completion_tokens == sum(r.usage.completion_tokens for r in responses)
    client.close()


def test_repeated_greedy_call_is_served_from_cache_without_sending(
    vllm_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    wire = Recording()
    client = client_for([vllm_url], transport=wire, cache=ResponseCache(tmp_path))
    request = LLMRequest.of("Cache me", max_tokens=12)
    first = client.generate_sync(request)
    sent = len(wire.bodies)
    second = client.generate_sync(request)
    assert not first.cached and second.cached and second.texts == first.texts
    assert len(wire.bodies) == sent == 1
    client.close()
    fresh = client_for([vllm_url], transport=Recording(), cache=ResponseCache(tmp_path))
    assert fresh.generate_sync(request).cached, "the cache persists across clients"
    fresh.close()


def test_seeded_sampling_is_cached_with_the_seed_in_the_key(
    vllm_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    wire = Recording()
    client = client_for([vllm_url], transport=wire, cache=ResponseCache(tmp_path))
    seeded = LLMRequest.of("Sample me", temperature=1.0, seed=11, max_tokens=12)
    first = client.generate_sync(seeded)
    assert client.generate_sync(seeded).cached
    other_seed = client.generate_sync(
        seeded.model_copy(update={"sampling": seeded.sampling.model_copy(update={"seed": 12})})
    )
    assert not other_seed.cached
    unseeded = LLMRequest.of("Sample me", temperature=1.0, max_tokens=12)
    assert not client.generate_sync(unseeded).cached
    assert not client.generate_sync(unseeded).cached
    assert [b.get("seed") for b in wire.bodies] == [11, 12, None, None]
    assert first.text, "seeded sampling produced a candidate"
    client.close()


def test_timeout_is_honoured(vllm_url: str) -> None:  # noqa: F811
    client = client_for([vllm_url], timeout_s=0.3, retry=RetryPolicy(max_retries=1, base_delay_s=0))
    long_answer = LLMRequest.of(
        "Write a lot.",
        structured=StructuredOutput.from_regex("x{480}"),
        temperature=1.0,
        max_tokens=480,
    )
    start = time.monotonic()
    with pytest.raises(LLMTimeoutError) as err:
        client.generate_sync(long_answer)
    elapsed = time.monotonic() - start
    assert err.value.attempts == 2 and vllm_url in str(err.value)
    # Two tries of 0.3 s; generous slack because a loaded 2-core box delays the client's timer.
    # Without the timeout this request would succeed (480 tokens take ~1-3 s here).
    assert 0.6 <= elapsed < 0.6 + 4.0
    client.close()


def test_dead_url_and_live_url_are_balanced_and_requests_succeed(vllm_url: str) -> None:  # noqa: F811
    dead = f"http://127.0.0.1:{free_port()}"
    client = client_for([dead, vllm_url], retry=RetryPolicy(max_retries=0))
    requests = [
        LLMRequest.of(f"q{i}", structured=StructuredOutput.from_choices(CHOICES), max_tokens=8)
        for i in range(20)
    ]
    results = client.run_many(requests)
    assert all(isinstance(r, LLMResponse) and r.text in CHOICES for r in results)
    dead_stats, live_stats = client.backend.stats()  # type: ignore[attr-defined]
    assert dead_stats.failed == dead_stats.sent >= 1
    assert live_stats.sent == 20 + 1  # + the /v1/models lookup
    client.close()


def test_two_live_urls_share_the_load(vllm_url: str) -> None:  # noqa: F811
    other_spelling = vllm_url.replace("127.0.0.1", "localhost")
    client = client_for([vllm_url, other_spelling], model="tiny")
    requests = [LLMRequest.of(f"q{i}", temperature=1.0, max_tokens=16) for i in range(40)]
    assert all(isinstance(r, LLMResponse) for r in client.run_many(requests))
    sent = [s.sent for s in client.backend.stats()]  # type: ignore[attr-defined]
    assert sum(sent) == 40 and min(sent) >= 10
    client.close()


def test_killed_server_keeps_finished_results_and_errors_the_rest(
    spare_vllm_server: VLLMServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    server = spare_vllm_server
    client = client_for(
        [server.url],
        max_concurrency=4,
        model="tiny",
        retry=RetryPolicy(max_retries=1, base_delay_s=0.1),
    )
    requests = [
        LLMRequest.of(
            f"Item {i}",
            structured=StructuredOutput.from_regex("x{64}"),
            temperature=1.0,
            max_tokens=64,
        )
        for i in range(40)
    ]
    journal = tmp_path / "results.jsonl"
    persisted: list[int] = []

    def on_result(index: int, result: object) -> None:
        if isinstance(result, LLMResponse):
            with journal.open("a") as f:
                f.write(json.dumps({"index": index, "text": result.text}) + "\n")
            persisted.append(index)
            if len(persisted) == 8:
                server.kill()

    results = client.run_many(requests, on_result=on_result)
    done = [i for i, r in enumerate(results) if isinstance(r, LLMResponse)]
    failed = [r for r in results if not isinstance(r, LLMResponse)]
    assert len(results) == 40 and len(done) >= 8 and len(failed) >= 20
    assert sorted(persisted) == done
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    assert sorted(line["index"] for line in lines) == done
    assert all(line["text"] == "x" * 64 for line in lines)
    for error in failed:
        assert isinstance(error, LLMConnectionError) and server.url in str(error)
    assert client.usage.failed_calls == len(failed)
    client.close()


def test_langchain_adapter_talks_to_the_same_endpoint(vllm_url: str) -> None:  # noqa: F811
    chat = make_chat_model(LLMConfig(urls=[vllm_url], max_retries=0))
    message = chat.invoke("Say something.", max_tokens=8)
    assert isinstance(message, AIMessage) and isinstance(message.content, str)
    assert message.response_metadata["model_name"] == "tiny"
    assert message.usage_metadata is not None and message.usage_metadata["output_tokens"] <= 8


class FindArgs(BaseModel):
    query: str = Field(max_length=12)
    k: int = Field(ge=1, le=5)


def test_server_started_by_the_helper_returns_parsed_tool_calls(vllm_url: str) -> None:  # noqa: F811
    """The chat agent will need tool calls: the starter's hermes/tool flags must work."""
    import openai

    schema = StructuredOutput.from_model(FindArgs).json_schema
    tool = {"type": "function", "function": {"name": "find_segments", "parameters": schema}}
    client = openai.OpenAI(base_url=normalize_url(vllm_url), api_key="EMPTY", max_retries=0)
    reply = client.chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": "Find the cup."}],
        tools=[tool],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "find_segments"}},
        temperature=1.0,
        seed=1,
        max_tokens=64,
    )
    (call,) = reply.choices[0].message.tool_calls or []
    assert call.function.name == "find_segments"  # type: ignore[union-attr]
    FindArgs.model_validate_json(call.function.arguments)  # type: ignore[union-attr]
