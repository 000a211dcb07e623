"""The backend interface and the one wrapper that every caller uses.

Following inspect_ai, a backend only implements ``generate`` for one request. :class:`LLMClient`
adds, once for all backends: the response cache (deterministic calls only), the concurrency limit
(one semaphore per client), usage metering, per-call latency, and ``generate_many``, which runs a
batch concurrently and returns, in order, a response or an :class:`LLMError` per request — a failed
request never loses the finished ones, and ``on_result`` lets a batch runner persist each result as
it lands. ``generate_sync``/``run_many`` are the same for synchronous code (CLI): they run on a
private event-loop thread so connections are reused across calls.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

from vidagent.llm.cache import ResponseCache, cache_key, cacheable
from vidagent.llm.errors import LLMError
from vidagent.llm.types import LLMRequest, LLMResponse, UsageMeter, UsageTotals

T = TypeVar("T")
Result = LLMResponse | LLMError
ResultCallback = Callable[[int, Result], Awaitable[None] | None]


@runtime_checkable
class LLMBackend(Protocol):
    """What a backend implements. It raises only :class:`LLMError` subclasses for call failures."""

    name: str

    async def model_name(self) -> str:
        """The model a request without ``model`` goes to (part of the cache key)."""
        ...

    async def generate(self, request: LLMRequest) -> LLMResponse:
        """Answer one request with ``request.sampling.n`` candidates."""
        ...

    async def close(self) -> None:
        """Release connections, threads or models."""
        ...


class LLMClient:
    """Cache, concurrency limit, usage meter and batching around one :class:`LLMBackend`."""

    def __init__(
        self,
        backend: LLMBackend,
        *,
        max_concurrency: int = 64,
        cache: ResponseCache | None = None,
        meter: UsageMeter | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        self.backend = backend
        self.max_concurrency = max_concurrency
        self.cache = cache
        self.meter = meter or UsageMeter()
        self._semaphore: asyncio.Semaphore | None = None
        self._semaphore_loop: asyncio.AbstractEventLoop | None = None
        self._runner = _LoopThread()

    @property
    def usage(self) -> UsageTotals:
        """Totals of this client's calls so far."""
        return self.meter.totals()

    def _limit(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._semaphore_loop is not loop:
            self._semaphore = asyncio.Semaphore(self.max_concurrency)
            self._semaphore_loop = loop
        return self._semaphore

    async def probe(self) -> None:
        """Check the backend answers before anything is sent (a served backend asks
        ``GET /v1/models`` with a short timeout, see :meth:`OpenAIBackend.probe`); in-process
        backends have nothing to probe. Raises :class:`LLMError` in seconds, naming the URL."""
        probe = getattr(self.backend, "probe", None)
        if probe is not None:
            await probe()

    def probe_sync(self) -> None:
        """:meth:`probe` for synchronous callers."""
        self._runner.run(self.probe())

    async def generate(self, request: LLMRequest) -> LLMResponse:
        """One call: from the cache if it is deterministic and known, else from the backend."""
        try:
            response = await self._cached_or_sent(request)
        except LLMError:
            self.meter.record_failure()
            raise
        self.meter.record(response)
        return response

    async def _cached_or_sent(self, request: LLMRequest) -> LLMResponse:
        key = None
        if self.cache is not None and cacheable(request):
            model = request.model or await self.backend.model_name()
            identity = getattr(self.backend, "model_identity", None)
            if identity is not None:
                model = await identity(model)
            key = cache_key(self.backend.name, model, request)
            hit = self.cache.get(key)
            if hit is not None:
                return hit
        async with self._limit():
            start = time.perf_counter()
            response = await self.backend.generate(request)
            latency = time.perf_counter() - start
        response = response.model_copy(update={"latency_s": latency, "cached": False})
        if key is not None and self.cache is not None:
            self.cache.put(key, response)
        return response

    async def generate_many(
        self, requests: Sequence[LLMRequest], *, on_result: ResultCallback | None = None
    ) -> list[Result]:
        """All ``requests`` concurrently (up to the limit); result ``i`` answers request ``i``.

        Each slot holds the response or the :class:`LLMError` that ended that request.
        ``on_result(i, result)`` (sync or async) is called as each one finishes; if it raises, the
        batch is cancelled and the error propagates.
        """
        results: list[Result | None] = [None] * len(requests)
        pending = iter(enumerate(requests))

        async def worker() -> None:
            for index, request in pending:
                result: Result
                try:
                    result = await self.generate(request)
                except LLMError as err:
                    result = err
                results[index] = result
                if on_result is not None:
                    returned = on_result(index, result)
                    if inspect.isawaitable(returned):
                        await returned

        workers = [
            asyncio.ensure_future(worker()) for _ in range(min(len(requests), self.max_concurrency))
        ]
        try:
            await asyncio.gather(*workers)
        except BaseException:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise
        done = [r for r in results if r is not None]
        assert len(done) == len(requests), "every request has a result"
        return done

    def generate_sync(self, request: LLMRequest) -> LLMResponse:
        """:meth:`generate` for synchronous callers."""
        return self._runner.run(self.generate(request))

    def run_many(
        self, requests: Sequence[LLMRequest], *, on_result: ResultCallback | None = None
    ) -> list[Result]:
        """:meth:`generate_many` for synchronous callers."""
        return self._runner.run(self.generate_many(requests, on_result=on_result))

    async def aclose(self) -> None:
        """Close the backend and the cache."""
        await self.backend.close()
        if self.cache is not None:
            self.cache.close()

    def close(self) -> None:
        """:meth:`aclose` for synchronous callers; also stops the private loop thread."""
        if self._runner.started:
            self._runner.run(self.aclose())
            self._runner.stop()
        else:
            asyncio.run(self.aclose())

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _LoopThread:
    """An event loop on a daemon thread, started on first use, for the synchronous API."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def started(self) -> bool:
        return self._loop is not None

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name="vidagent-llm-loop", daemon=True
                )
                self._thread.start()
            loop = self._loop
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def stop(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()
