"""Backend for OpenAI-compatible servers (``vllm serve``), one or several replicas.

- One ``AsyncOpenAI`` per base URL over one shared ``httpx.AsyncClient`` whose connection pool is
  sized to the concurrency limit, so connections are reused instead of reopened per request.
- Retries are ours (the ``openai`` client's own ``max_retries`` is 0): connection errors, timeouts,
  429 and 5xx are retried with exponential backoff and jitter (:mod:`vidagent.llm.retry`); after the
  last try, :class:`LLMConnectionError` / :class:`LLMTimeoutError` name the URL(s) and the cause.
  Other 4xx raise :class:`LLMRequestError` at once.
- Several URLs are load-balanced: each try goes to the replica with the fewest outstanding
  requests. A replica that refuses connections or answers 5xx is taken out and the request fails
  over to the others at once, without spending a retry (least-outstanding balancing would
  otherwise send ever more traffic to a replica that fails fast). It stays out for ``cooldown_s``,
  doubled on each outage in a row up to ``max_cooldown_s``; then a single request probes it
  (others keep away while the probe is in flight) and one success brings it back.
- Structured output goes in ``extra_body={"structured_outputs": {...}}``. The old ``guided_*``
  fields are silently ignored by current vLLM and are never sent.
- :meth:`OpenAIBackend.probe` (``LLMClient.probe``: the API calls it before a command or a batch
  sends anything; :meth:`model_name` too when no model is configured) asks every replica once:
  ``GET /v1/models`` with a short timeout (``probe_timeout_s``, no retries). A server that accepts
  TCP but never answers, a URL that is not an OpenAI-compatible server, or one that does not serve
  the configured model fails in seconds, in one line naming the URL, instead of after
  ``max_retries`` x ``timeout_s`` of silence. With several replicas, those that fail the probe
  are taken out and the others serve the run.
- The model defaults to the first one ``GET /v1/models`` lists. :meth:`OpenAIBackend.model_identity`
  names the weights behind it (vLLM's ``root``: the model's path or hub id), so the response cache
  never answers for a different server's model of the same name.

The timeout is per try and a hard wall-clock deadline (``asyncio.wait_for``); a cancelled try
closes its connection, which makes vLLM abort that request.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import httpx
import openai
from pydantic import ValidationError

from vidagent.core.errors import ConfigError
from vidagent.llm.errors import (
    LLMConnectionError,
    LLMError,
    LLMOutputError,
    LLMRequestError,
    LLMTimeoutError,
)
from vidagent.llm.replicas import Replica, ReplicaAbortedError, ReplicaStats, server_error
from vidagent.llm.retry import RetryPolicy, classify, describe, retry_after_s
from vidagent.llm.types import LLMRequest, LLMResponse, Usage

T = TypeVar("T")


def normalize_url(url: str) -> str:
    """``http://host:8000`` or ``http://host:8000/v1/`` -> ``http://host:8000/v1``.

    Raises :class:`ConfigError` for text that is not a URL with a host (``'::::'``, ``'http://'``).
    """
    given = url
    scheme, sep, rest = url.strip().partition("://")
    if not sep:
        scheme, rest = "http", scheme
    url = f"{scheme}://{rest.rstrip('/')}"
    try:
        parsed = httpx.URL(url)
        valid = scheme in ("http", "https") and bool(parsed.host) and parsed.port != 0
    except (httpx.InvalidURL, ValueError):
        valid = False
    if not valid:
        raise ConfigError(
            f"{given!r} is not an LLM server URL (expected e.g. http://localhost:8000/v1)"
        )
    return url if url.endswith("/v1") else f"{url}/v1"


def chat_kwargs(request: LLMRequest, model: str) -> dict[str, Any]:
    """The keyword arguments of ``chat.completions.create`` for ``request``."""
    sampling = request.sampling
    kwargs: dict[str, Any] = {
        "model": model,
        "messages": [m.model_dump() for m in request.messages],
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "max_tokens": sampling.max_tokens,
        "n": sampling.n,
    }
    if sampling.seed is not None:
        kwargs["seed"] = sampling.seed
    if sampling.stop:
        kwargs["stop"] = sampling.stop
    if request.structured is not None:
        kwargs["extra_body"] = {"structured_outputs": request.structured.as_vllm()}
    return kwargs


class _Clients:
    """The loop-bound part: the shared HTTP pool and one ``AsyncOpenAI`` per replica."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        http: httpx.AsyncClient,
        per_url: dict[str, openai.AsyncOpenAI],
    ) -> None:
        self.loop = loop
        self.http = http
        self.per_url = per_url
        self.model_lock = asyncio.Lock()
        self.probe_lock = asyncio.Lock()


class OpenAIBackend:
    """:class:`~vidagent.llm.backend.LLMBackend` over one or more OpenAI-compatible base URLs."""

    name = "openai"

    def __init__(
        self,
        urls: Sequence[str],
        *,
        model: str | None = None,
        api_key: str = "EMPTY",
        timeout_s: float = 60.0,
        retry: RetryPolicy | None = None,
        max_connections: int = 64,
        cooldown_s: float = 2.0,
        max_cooldown_s: float = 60.0,
        probe_timeout_s: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not urls:
            raise ValueError("OpenAIBackend needs at least one base URL")
        self.urls = [normalize_url(u) for u in urls]
        self.model = model
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self.max_connections = max_connections
        self.cooldown_s = cooldown_s
        self.max_cooldown_s = max_cooldown_s
        self.probe_timeout_s = probe_timeout_s
        self._served: dict[str, str] | None = None  # model id -> root, from the probe
        self._clock = clock
        self._transport = transport
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._replicas = [Replica(u) for u in self.urls]
        self._clients: _Clients | None = None

    def stats(self) -> list[ReplicaStats]:
        """Per-URL counters, in the order the URLs were given."""
        return [
            ReplicaStats(
                url=r.url,
                sent=r.sent,
                failed=r.failed,
                outstanding=r.outstanding,
                peak_outstanding=r.peak_outstanding,
            )
            for r in self._replicas
        ]

    def _bound(self) -> _Clients:
        """The clients of the running loop (rebuilt if the caller moved to another loop)."""
        loop = asyncio.get_running_loop()
        if self._clients is None or self._clients.loop is not loop:
            limits = httpx.Limits(
                max_connections=self.max_connections,
                max_keepalive_connections=self.max_connections,
            )
            http = httpx.AsyncClient(
                limits=limits, timeout=httpx.Timeout(self.timeout_s), transport=self._transport
            )
            # openai>=3 is typed for httpx2 but accepts httpx clients (the project's dependency).
            per_url = {
                url: openai.AsyncOpenAI(
                    base_url=url,
                    api_key=self.api_key,
                    max_retries=0,
                    http_client=http,  # type: ignore[arg-type]
                )
                for url in self.urls
            }
            self._clients = _Clients(loop, http, per_url)
        return self._clients

    async def probe(self) -> dict[str, str]:
        """``GET /v1/models`` on every replica once, ``probe_timeout_s`` each, no retries.

        Returns the served models (id -> root) of the first replica that answers. Replicas that do
        not answer are taken out. Raises :class:`LLMConnectionError` (none answers: the URL and
        the cause, in seconds), or :class:`LLMRequestError` (an answer that is not an
        OpenAI-compatible model list, or the configured model is not served).
        """
        clients = self._bound()
        async with clients.probe_lock:
            if self._served is not None:
                return self._served
            answers = await asyncio.gather(*(self._probe_one(r) for r in self._replicas))
            served: dict[str, str] | None = None
            problems = []
            for replica, answer in zip(self._replicas, answers, strict=True):
                if isinstance(answer, dict):
                    served = answer if served is None else served
                else:
                    problems.append(answer)
                    self._take_out(replica)
            if served is None:
                if any(isinstance(p, LLMRequestError) for p in problems):
                    raise next(p for p in problems if isinstance(p, LLMRequestError))
                causes = [str(p) for p in problems]
                if len(causes) > 1:
                    causes = [f"{u}: {c}" for u, c in zip(self.urls, causes, strict=True)]
                raise LLMConnectionError(self.urls, 1, "; ".join(causes))
            if not served:
                raise LLMRequestError(f"LLM server at {', '.join(self.urls)} serves no model")
            if self.model is not None and self.model not in served:
                raise LLMRequestError(
                    f"LLM server at {', '.join(self.urls)} does not serve model {self.model!r}; "
                    f"it serves {sorted(served)}"
                )
            self._served = served
            return served

    async def _probe_one(self, replica: Replica) -> dict[str, str] | LLMError:
        client = self._bound().per_url[replica.url]
        replica.sent += 1
        answer = await self._ask_models(client, replica)
        if not isinstance(answer, dict):
            replica.failed += 1
        return answer

    async def _ask_models(
        self, client: openai.AsyncOpenAI, replica: Replica
    ) -> dict[str, str] | LLMError:
        try:
            page = await asyncio.wait_for(client.models.list(), self.probe_timeout_s)
        except asyncio.TimeoutError:
            return LLMError(
                f"accepted the connection but did not answer GET /v1/models within "
                f"{self.probe_timeout_s:g} s (not a vLLM server, or still starting?)"
            )
        except openai.APIConnectionError as exc:
            return LLMError(describe(exc))
        except (openai.OpenAIError, ValidationError, ValueError, TypeError) as exc:
            status = getattr(exc, "status_code", None)
            what = f"HTTP {status}" if status else f"{type(exc).__name__}: {exc}"
            return LLMRequestError(
                f"LLM server at {replica.url} is not an OpenAI-compatible server "
                f"(GET /v1/models: {what})"
            )
        return {m.id: str(getattr(m, "root", None) or m.id) for m in page.data}

    async def model_name(self) -> str:
        """The configured model, else the first one the server lists (asked once)."""
        if self.model is None:
            served = await self.probe()
            self.model = self.model or next(iter(served))
        return self.model

    async def model_identity(self, model: str) -> str:
        """What can change the answers of ``model``: the weights the server loaded (vLLM's
        ``root``, a path or hub id). Part of the response cache key."""
        served = await self.probe()
        return f"{model}@{served.get(model, ','.join(self.urls))}"

    async def list_models(self) -> list[str]:
        """Ids of the models the server serves (``GET /v1/models``)."""

        async def call(client: openai.AsyncOpenAI) -> list[str]:
            page = await client.models.list()
            return [m.id for m in page.data]

        return await self._with_retries(call)

    async def generate(self, request: LLMRequest) -> LLMResponse:
        """One chat completion with ``n`` candidates, retried and load-balanced."""
        kwargs = chat_kwargs(request, request.model or await self.model_name())

        async def call(client: openai.AsyncOpenAI) -> LLMResponse:
            completion = await client.chat.completions.create(**kwargs)
            choices = sorted(completion.choices, key=lambda c: c.index)
            if any(c.finish_reason == "abort" for c in choices):
                raise ReplicaAbortedError(str(client.base_url))
            usage = completion.usage
            return LLMResponse(
                texts=[c.message.content or "" for c in choices],
                finish_reasons=[c.finish_reason for c in choices],
                usage=Usage(
                    prompt_tokens=usage.prompt_tokens if usage else 0,
                    completion_tokens=usage.completion_tokens if usage else 0,
                ),
                model=completion.model,
            )

        return await self._with_retries(call)

    def _pick(self, avoid: set[Replica]) -> Replica:
        now = self._clock()
        pool = [r for r in self._replicas if r not in avoid and r.usable(now)]
        pool = pool or [r for r in self._replicas if r not in avoid] or self._replicas
        return min(pool, key=lambda r: (r.outstanding, r.sent))

    async def _with_retries(self, call: Callable[[openai.AsyncOpenAI], Awaitable[T]]) -> T:
        clients = self._bound()
        tried: set[Replica] = set()
        used: list[str] = []
        attempts = retries = 0
        while True:
            replica = self._pick(tried)
            if replica.url not in used:
                used.append(replica.url)
            attempts += 1
            replica.sent += 1
            replica.outstanding += 1
            replica.peak_outstanding = max(replica.peak_outstanding, replica.outstanding)
            try:
                result = await asyncio.wait_for(call(clients.per_url[replica.url]), self.timeout_s)
            except (openai.OpenAIError, asyncio.TimeoutError, ValidationError) as exc:
                failure = exc
            else:
                replica.strikes, replica.down_until = 0, 0.0
                return result
            finally:
                replica.outstanding -= 1
            replica.failed += 1
            kind = classify(failure)
            if kind == "rejected":
                raise LLMRequestError(
                    f"LLM server at {replica.url} rejected the request: {describe(failure)}"
                ) from failure
            if kind == "invalid":
                raise LLMOutputError(
                    f"LLM server at {replica.url} sent an unusable response: {failure}"
                ) from failure
            tried.add(replica)
            if kind == "connection" or server_error(failure):
                self._take_out(replica)
                if len(tried) < len(self._replicas):
                    continue  # fail over to another replica at once
            if retries >= self.retry.max_retries:
                if kind == "timeout":
                    raise LLMTimeoutError(used, attempts, self.timeout_s) from failure
                raise LLMConnectionError(used, attempts, describe(failure)) from failure
            await self._sleep(self.retry.delay(retries, self._rng, retry_after_s(failure)))
            retries += 1
            if len(tried) == len(self._replicas):
                tried.clear()

    def _take_out(self, replica: Replica) -> None:
        """Cool ``replica`` down; a new outage (not another failure of one in progress) doubles
        the cool-down."""
        now = self._clock()
        if replica.down_until <= now:
            replica.strikes += 1
        wait = self.cooldown_s * 2.0 ** (replica.strikes - 1)
        replica.down_until = now + min(self.max_cooldown_s, wait)

    async def close(self) -> None:
        """Close the HTTP pool (only if it belongs to the running loop; else it is dropped)."""
        clients, self._clients = self._clients, None
        if clients is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if clients.loop is running:
            await clients.http.aclose()
