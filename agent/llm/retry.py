"""Retry policy for HTTP backends: which failures are worth another try, and how long to wait.

Connection errors, timeouts, 429 and 5xx are transient on a busy or restarting vLLM server; any
other 4xx means the request itself is wrong and is never retried. Waits grow exponentially with
jitter (so many concurrent requests do not retry in lock-step), capped, and a ``Retry-After``
header from the server is honoured up to the cap.
"""

from __future__ import annotations

import asyncio
import random
from typing import Literal

import openai
from pydantic import BaseModel, ConfigDict, Field

FailureKind = Literal["connection", "timeout", "status", "rejected", "invalid"]


class RetryPolicy(BaseModel):
    """``max_retries`` extra tries after the first; wait ``base * 2**k`` (capped) with jitter."""

    model_config = ConfigDict(extra="forbid")

    max_retries: int = Field(default=3, ge=0)
    base_delay_s: float = Field(default=0.5, ge=0.0)
    max_delay_s: float = Field(default=8.0, ge=0.0)
    jitter: float = Field(
        default=0.5, ge=0.0, le=1.0, description="Fraction of each wait that is random"
    )

    def delay(self, retry: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0-based).

        The wait lies in ``[d * (1 - jitter), d]`` with ``d = min(max, base * 2**retry)``; a
        server's ``Retry-After`` raises it (never above ``max_delay_s``).
        """
        ceiling = min(self.max_delay_s, self.base_delay_s * (2.0**retry))
        wait = ceiling * (1.0 - self.jitter) + rng.random() * ceiling * self.jitter
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_delay_s))
        return wait


def classify(exc: BaseException) -> FailureKind:
    """How an exception from the ``openai`` client (or our own deadline) should be treated.

    ``connection``, ``timeout`` and ``status`` (429, 5xx) are retried; ``rejected`` (other 4xx)
    and ``invalid`` (a response that cannot be parsed) are not.
    """
    if isinstance(exc, (openai.APITimeoutError, asyncio.TimeoutError, TimeoutError)):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection"
    if isinstance(exc, openai.APIStatusError):
        code = exc.status_code
        return "status" if code == 429 or code >= 500 else "rejected"
    return "invalid"


def retry_after_s(exc: BaseException) -> float | None:
    """The ``Retry-After`` seconds of an HTTP error response, if it has a numeric one."""
    if not isinstance(exc, openai.APIStatusError):
        return None
    value = exc.response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def describe(exc: BaseException) -> str:
    """A one-line cause for error messages: the HTTP status and message, or the exception."""
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}: {_server_message(exc)}"
    cause = exc.__cause__ or exc.__context__
    detail = f"{type(cause).__name__}: {cause}" if cause is not None else str(exc)
    return f"{type(exc).__name__} ({detail})" if str(detail) else type(exc).__name__


def _server_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        message = body.get("message") or body.get("error", {})
        if isinstance(message, dict):
            message = message.get("message")
        if message:
            return str(message)[:500]
    return exc.message[:500]
