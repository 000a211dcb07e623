"""LLMClient's own duties (cache, limit, meter, ordered batches, sync API) with a scripted backend.

The scripted backend exists so that failures can be placed at exact positions of a batch and the
number of backend calls counted; the same duties against the real vLLM server are in
test_llm_server.py.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from vidagent.core.errors import StoreError
from vidagent.llm import (
    LLMClient,
    LLMConnectionError,
    LLMRequest,
    LLMResponse,
    ResponseCache,
    Usage,
)
from vidagent.llm.backend import LLMBackend


class ScriptedBackend:
    """Echoes the prompt after a short sleep; prompts starting with 'fail' raise."""

    name = "scripted"

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.in_flight = 0
        self.peak = 0
        self.closed = False
        self.loops: set[int] = set()

    async def model_name(self) -> str:
        return "scripted-model"

    async def generate(self, request: LLMRequest) -> LLMResponse:
        prompt = request.messages[-1].content
        self.calls.append(prompt)
        self.loops.add(id(asyncio.get_running_loop()))
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(0.01 * (len(prompt) % 3))
            if prompt.startswith("fail"):
                raise LLMConnectionError(["http://scripted"], 1, f"refused {prompt}")
            return LLMResponse(
                texts=[prompt] * request.sampling.n,
                finish_reasons=["stop"] * request.sampling.n,
                usage=Usage(prompt_tokens=len(prompt), completion_tokens=1),
                model="scripted-model",
            )
        finally:
            self.in_flight -= 1

    async def close(self) -> None:
        self.closed = True


def test_scripted_backend_satisfies_the_protocol() -> None:
    assert isinstance(ScriptedBackend(), LLMBackend)


def test_generate_many_keeps_order_limits_concurrency_and_records_failures() -> None:
    backend = ScriptedBackend()
    client = LLMClient(backend, max_concurrency=5)
    prompts = [f"fail {i}" if i % 7 == 3 else f"ok {i}" for i in range(40)]
    seen: dict[int, object] = {}

    async def on_result(index: int, result: object) -> None:
        assert index not in seen
        seen[index] = result

    results = asyncio.run(
        client.generate_many([LLMRequest.of(p) for p in prompts], on_result=on_result)
    )
    assert len(results) == 40 and backend.peak == 5
    for prompt, result in zip(prompts, results, strict=True):
        if prompt.startswith("fail"):
            assert isinstance(result, LLMConnectionError) and prompt in str(result)
        else:
            assert isinstance(result, LLMResponse) and result.text == prompt
    assert seen == dict(enumerate(results))
    usage = client.usage
    assert (usage.calls, usage.failed_calls) == (34, 6)
    assert usage.prompt_tokens == sum(len(p) for p in prompts if not p.startswith("fail"))


def test_an_on_result_error_cancels_the_batch_and_propagates() -> None:
    client = LLMClient(ScriptedBackend(), max_concurrency=2)

    def on_result(index: int, result: object) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        asyncio.run(
            client.generate_many([LLMRequest.of(f"p{i}") for i in range(10)], on_result=on_result)
        )


def test_deterministic_calls_hit_the_cache_and_skip_the_backend(tmp_path: Path) -> None:
    backend = ScriptedBackend()
    client = LLMClient(backend, cache=ResponseCache(tmp_path))
    greedy = LLMRequest.of("same")
    first = client.generate_sync(greedy)
    second = client.generate_sync(greedy)
    assert not first.cached and second.cached and second.texts == first.texts
    assert backend.calls == ["same"]
    client.generate_sync(LLMRequest.of("same", temperature=1.0))
    client.generate_sync(LLMRequest.of("same", temperature=1.0))
    assert len(backend.calls) == 3, "unseeded sampling is never cached"
    client.generate_sync(LLMRequest.of("same", temperature=1.0, seed=4))
    assert client.generate_sync(LLMRequest.of("same", temperature=1.0, seed=4)).cached
    assert not client.generate_sync(LLMRequest.of("same", temperature=1.0, seed=5)).cached
    usage = client.usage
    assert (usage.calls, usage.cached_calls) == (7, 2)
    assert usage.prompt_tokens == 4 * len(backend.calls)
    client.close()
    assert backend.closed


def test_failures_are_not_cached(tmp_path: Path) -> None:
    backend = ScriptedBackend()
    client = LLMClient(backend, cache=ResponseCache(tmp_path))
    for _ in range(2):
        with pytest.raises(LLMConnectionError):
            client.generate_sync(LLMRequest.of("fail once"))
    assert len(backend.calls) == 2
    client.close()


def test_sync_api_reuses_one_private_loop_and_works_inside_a_running_loop() -> None:
    backend = ScriptedBackend()
    client = LLMClient(backend)
    client.generate_sync(LLMRequest.of("a"))
    client.run_many([LLMRequest.of("b"), LLMRequest.of("c")])

    async def from_async_code() -> str:
        return client.generate_sync(LLMRequest.of("d")).text

    assert asyncio.run(from_async_code()) == "d"
    assert len(backend.loops) == 1
    threads = {t.name for t in threading.enumerate()}
    assert "vidagent-llm-loop" in threads
    client.close()
    assert "vidagent-llm-loop" not in {t.name for t in threading.enumerate()}


def test_max_concurrency_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_concurrency"):
        LLMClient(ScriptedBackend(), max_concurrency=0)


def test_an_unusable_cache_folder_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "home"
    blocker.write_text("a file where the cache folder should be")
    with pytest.raises(StoreError, match=r"cannot open the LLM response cache at .*--no-cache"):
        ResponseCache(blocker / "llm")
