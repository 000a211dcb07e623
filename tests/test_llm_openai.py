"""OpenAIBackend without a server: what goes on the wire, retries, backoff, failover, timeouts.

An ``httpx.MockTransport`` plays the server so every request body can be inspected and every
failure mode injected; ``sleep`` is replaced to record backoff waits instead of waiting. The same
behaviour against a real vLLM server is in test_llm_server.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from vidagent.core.errors import ConfigError
from vidagent.llm.backend import LLMClient
from vidagent.llm.cache import ResponseCache
from vidagent.llm.errors import (
    LLMConnectionError,
    LLMOutputError,
    LLMRequestError,
    LLMTimeoutError,
)
from vidagent.llm.openai_backend import OpenAIBackend, normalize_url
from vidagent.llm.retry import RetryPolicy
from vidagent.llm.types import LLMRequest, StructuredOutput
from vidagent.testing.vllm_server import free_port


class Answer(BaseModel):
    label: str
    score: int


def completion(texts: list[str], model: str = "tiny") -> dict[str, Any]:
    return {
        "id": "cmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
            for i, t in enumerate(texts)
        ],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
    }


class FakeServer:
    """Records every request; ``reply(request, n)`` decides the answer to the n-th chat call."""

    def __init__(self, reply: Callable[[httpx.Request, int], httpx.Response] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.chat_calls = 0
        self.reply = reply or (lambda request, n: httpx.Response(200, json=completion(["ok"])))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"object": "list", "data": [{"id": "tiny-served"}]})
        self.chat_calls += 1
        return self.reply(request, self.chat_calls)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests if r.method == "POST"]


def backend(
    server: Any, urls: list[str] | None = None, **kwargs: Any
) -> tuple[OpenAIBackend, list[float]]:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    kwargs.setdefault("retry", RetryPolicy(max_retries=3, base_delay_s=0.5, max_delay_s=8.0))
    b = OpenAIBackend(
        urls or ["http://llm.test:8000"],
        transport=httpx.MockTransport(server),
        sleep=sleep,
        rng=random.Random(0),
        **kwargs,
    )
    return b, waits


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def run_all(b: OpenAIBackend, count: int) -> list[Any]:
    async def main() -> list[Any]:
        return await asyncio.gather(*[b.generate(LLMRequest.of(f"{i}")) for i in range(count)])

    return run(main())


@pytest.mark.parametrize(
    ("structured", "expected"),
    [
        (StructuredOutput.from_choices(["a", "b"]), {"choice": ["a", "b"]}),
        (StructuredOutput.from_regex(r"\d{3}"), {"regex": r"\d{3}"}),
        (
            StructuredOutput.from_model(Answer),
            {"json": StructuredOutput.from_model(Answer).json_schema},
        ),
    ],
)
def test_structured_output_goes_in_structured_outputs_never_guided(
    structured: StructuredOutput, expected: dict[str, Any]
) -> None:
    server = FakeServer()
    b, _ = backend(server, model="tiny")
    request = LLMRequest.of(
        "hi",
        system="be brief",
        structured=structured,
        temperature=0.7,
        top_p=0.9,
        max_tokens=12,
        seed=5,
        n=2,
        stop=["\n"],
    )
    run(b.generate(request))
    (body,) = server.bodies()
    assert body["structured_outputs"] == expected
    assert not [k for k in body if k.startswith("guided")]
    assert "response_format" not in body
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
    ]
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.7, 0.9, 12)
    assert (body["seed"], body["n"], body["stop"], body["model"]) == (5, 2, ["\n"], "tiny")


def test_unconstrained_request_sends_no_structured_field_and_parses_the_answer() -> None:
    server = FakeServer(lambda r, n: httpx.Response(200, json=completion(["x", "y"], "m")))
    b, _ = backend(server, model="tiny")
    response = run(b.generate(LLMRequest.of("hi", n=2)))
    (body,) = server.bodies()
    assert "structured_outputs" not in body and "seed" not in body and "stop" not in body
    assert response.texts == ["x", "y"] and response.finish_reasons == ["stop", "stop"]
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (7, 3)
    assert response.model == "m"


def test_model_is_detected_once_from_v1_models() -> None:
    server = FakeServer()
    b, _ = backend(server)
    run(b.generate(LLMRequest.of("a")))
    run(b.generate(LLMRequest.of("b")))
    paths = [r.url.path for r in server.requests]
    assert paths == ["/v1/models", "/v1/chat/completions", "/v1/chat/completions"]
    assert {body["model"] for body in server.bodies()} == {"tiny-served"}


def test_5xx_and_429_are_retried_with_growing_jittered_backoff() -> None:
    codes = {1: 503, 2: 500, 3: 429}
    server = FakeServer(
        lambda r, n: (
            httpx.Response(codes[n], json={"message": "busy"})
            if n in codes
            else httpx.Response(200, json=completion(["fine"]))
        )
    )
    b, waits = backend(server, model="tiny")
    assert run(b.generate(LLMRequest.of("hi"))).text == "fine"
    assert server.chat_calls == 4
    policy = b.retry
    for k, wait in enumerate(waits):
        ceiling = policy.base_delay_s * 2**k
        assert ceiling * (1 - policy.jitter) <= wait <= ceiling
    assert len(waits) == 3 and waits[0] < waits[2]


def test_retry_after_header_is_honoured_up_to_the_cap() -> None:
    server = FakeServer(
        lambda r, n: (
            httpx.Response(429, headers={"Retry-After": "3"}, json={})
            if n == 1
            else httpx.Response(200, json=completion(["ok"]))
        )
    )
    b, waits = backend(server, model="tiny")
    run(b.generate(LLMRequest.of("hi")))
    assert waits == [3.0]


def test_persistent_5xx_ends_in_connection_error_naming_url_status_and_attempts() -> None:
    server = FakeServer(lambda r, n: httpx.Response(502, json={"message": "bad gateway"}))
    b, waits = backend(server, model="tiny", retry=RetryPolicy(max_retries=2, base_delay_s=0.1))
    with pytest.raises(LLMConnectionError) as err:
        run(b.generate(LLMRequest.of("hi")))
    assert type(err.value) is LLMConnectionError
    assert err.value.attempts == 3 and server.chat_calls == 3 and len(waits) == 2
    assert "http://llm.test:8000/v1" in str(err.value) and "HTTP 502" in str(err.value)


def test_4xx_is_not_retried_and_says_what_the_server_said() -> None:
    server = FakeServer(
        lambda r, n: httpx.Response(400, json={"message": "prompt too long", "type": "Bad"})
    )
    b, waits = backend(server, model="tiny")
    with pytest.raises(LLMRequestError, match=r"llm.test:8000/v1.*HTTP 400.*prompt too long"):
        run(b.generate(LLMRequest.of("hi")))
    assert server.chat_calls == 1 and waits == []


def test_an_unusable_response_is_an_output_error_not_retried() -> None:
    server = FakeServer(lambda r, n: httpx.Response(200, json=completion([])))
    b, waits = backend(server, model="tiny")
    with pytest.raises(LLMOutputError, match=r"llm.test:8000/v1 sent an unusable response"):
        run(b.generate(LLMRequest.of("hi")))
    assert server.chat_calls == 1 and waits == []


def test_refused_connection_fails_over_to_the_next_url_without_spending_a_retry() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "down.test":
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json=completion(["up"]))

    b, waits = backend(handler, urls=["http://down.test:1", "http://up.test:2"], model="tiny")
    results = run_all(b, 10)
    assert [r.text for r in results] == ["up"] * 10
    assert waits == []
    down, up = b.stats()
    assert up.sent == 10 and up.failed == 0
    assert down.failed == down.sent >= 1
    assert down.sent < 10, "a refusing replica is skipped during its cool-down"


def test_all_urls_down_names_every_url_and_counts_every_try() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    b, waits = backend(
        handler,
        urls=["http://a.test:1", "http://b.test:2"],
        model="tiny",
        retry=RetryPolicy(max_retries=1, base_delay_s=0.1),
    )
    with pytest.raises(LLMConnectionError) as err:
        run(b.generate(LLMRequest.of("hi")))
    assert err.value.attempts == 4 and len(waits) == 1
    assert "http://a.test:1/v1" in str(err.value) and "http://b.test:2/v1" in str(err.value)


def test_requests_are_spread_by_least_outstanding() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.05)
        return httpx.Response(200, json=completion([request.url.host]))

    b, _ = backend(handler, urls=["http://one.test", "http://two.test"], model="tiny")
    results = run_all(b, 8)
    assert sorted(r.text for r in results) == ["one.test"] * 4 + ["two.test"] * 4
    assert [s.peak_outstanding for s in b.stats()] == [4, 4]


def test_timeout_is_a_hard_deadline_per_try() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return httpx.Response(200, json=completion(["late"]))

    b, _ = backend(
        handler, model="tiny", timeout_s=0.2, retry=RetryPolicy(max_retries=1, base_delay_s=0)
    )
    start = time.monotonic()
    with pytest.raises(LLMTimeoutError) as err:
        run(b.generate(LLMRequest.of("hi")))
    elapsed = time.monotonic() - start
    assert 0.4 <= elapsed < 1.5
    assert err.value.attempts == 2 and "0.2 s timeout" in str(err.value)


def test_dead_port_gives_connection_error_after_the_retries() -> None:
    port = free_port()
    b = OpenAIBackend(
        [f"http://127.0.0.1:{port}"],
        model="tiny",
        retry=RetryPolicy(max_retries=2, base_delay_s=0.01),
    )
    with pytest.raises(LLMConnectionError) as err:
        run(b.generate(LLMRequest.of("hi")))
    assert err.value.attempts == 3 and b.stats()[0].sent == 3
    assert f"http://127.0.0.1:{port}/v1" in str(err.value) and "3 attempt(s)" in str(err.value)


def test_retry_policy_delays_stay_in_their_band_and_are_capped() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=5.0, jitter=0.5)
    rng = random.Random(1)
    for k, ceiling in enumerate([1.0, 2.0, 4.0, 5.0, 5.0]):
        for _ in range(50):
            assert ceiling * 0.5 <= policy.delay(k, rng) <= ceiling
    assert policy.delay(0, rng, retry_after=60) == 5.0


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://h:8000", "http://h:8000/v1"),
        ("http://h:8000/v1/", "http://h:8000/v1"),
        ("h:8000", "http://h:8000/v1"),
        ("https://api.example/v1", "https://api.example/v1"),
    ],
)
def test_normalize_url(given: str, expected: str) -> None:
    assert normalize_url(given) == expected


@pytest.mark.parametrize("given", ["::::", "http://", "http://:0", ""])
def test_a_url_without_a_host_is_a_config_error(given: str) -> None:
    with pytest.raises(ConfigError, match="is not an LLM server URL"):
        normalize_url(given)


@contextlib.contextmanager
def silent_server() -> Iterator[str]:
    """A TCP server that accepts connections and never answers (a hung or wrong process)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def test_a_silent_server_fails_the_probe_in_seconds_naming_the_url() -> None:
    with silent_server() as url:
        b = OpenAIBackend([url], model="tiny", timeout_s=120.0, probe_timeout_s=0.5)
        start = time.monotonic()
        with pytest.raises(LLMConnectionError) as err:
            run(b.probe())
        assert time.monotonic() - start < 3.0  # not 4 x 120 s of silence
    assert url in str(err.value) and "did not answer GET /v1/models within 0.5 s" in str(err.value)


def test_a_server_that_is_not_openai_compatible_fails_the_probe() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, text="<html>Not Found</html>")

    b, _ = backend(handler, model="tiny")
    with pytest.raises(LLMRequestError, match=r"is not an OpenAI-compatible server .*HTTP 404"):
        run(b.probe())


def test_an_unknown_model_fails_the_probe_with_the_served_ones() -> None:
    b, _ = backend(FakeServer(), model="qwen")
    with pytest.raises(LLMRequestError, match=r"does not serve model 'qwen'.*\['tiny-served'\]"):
        run(b.probe())


def test_a_silent_replica_is_taken_out_and_the_others_serve() -> None:
    server = FakeServer()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "silent.test":
            await asyncio.sleep(30)
        return server(request)

    b, _ = backend(handler, urls=["http://silent.test:1", "http://up.test:2"], probe_timeout_s=0.3)
    start = time.monotonic()
    assert run(b.probe()) == {"tiny-served": "tiny-served"}
    assert time.monotonic() - start < 2.0
    silent, up = b._replicas
    assert silent.down_until > 0 and up.down_until == 0


def test_the_response_cache_is_keyed_on_the_weights_behind_the_name(tmp_path: Path) -> None:
    """Two servers serving different weights under one name never share cached answers."""

    def server(root: str) -> FakeServer:
        fake = FakeServer(lambda request, n: httpx.Response(200, json=completion([root])))
        models = {"object": "list", "data": [{"id": "tiny", "root": root}]}

        def call(request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/models"):
                fake.requests.append(request)
                return httpx.Response(200, json=models)
            return fake(request)

        fake.handler = call  # type: ignore[attr-defined]
        return fake

    one, two = server("/models/a"), server("/models/b")
    request = LLMRequest.of("same prompt")
    texts = []
    for fake in (one, two, one):
        b, _ = backend(fake.handler, model="tiny")  # type: ignore[attr-defined]
        with LLMClient(b, cache=ResponseCache(tmp_path)) as client:
            texts.append((client.generate_sync(request).texts[0], fake.chat_calls))
    assert texts == [("/models/a", 1), ("/models/b", 1), ("/models/a", 1)]  # 3rd from the cache
