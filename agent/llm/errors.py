"""Errors of the LLM layer: all subclasses of :class:`vidagent.core.errors.VidagentError`.

Each message names the server URL (or model) and the cause, so a batch result or a CLI line is
enough to tell what went wrong without a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence

from vidagent.core.errors import VidagentError


class LLMError(VidagentError):
    """Base of every error an LLM call can end with; a batch records it per request."""


class LLMConnectionError(LLMError):
    """The server was unreachable or kept failing (connection error, 429, 5xx) after retries."""

    def __init__(self, urls: Sequence[str], attempts: int, cause: str) -> None:
        where = ", ".join(urls)
        super().__init__(f"LLM server at {where} failed after {attempts} attempt(s): {cause}")
        self.urls = list(urls)
        self.attempts = attempts
        self.cause = cause


class LLMTimeoutError(LLMConnectionError):
    """The server did not answer within the timeout, on every attempt."""

    def __init__(self, urls: Sequence[str], attempts: int, timeout_s: float) -> None:
        super().__init__(urls, attempts, f"no answer within the {timeout_s:g} s timeout")
        self.timeout_s = timeout_s


class LLMRequestError(LLMError):
    """The server rejected the request (4xx other than 429): retrying would not help."""


class LLMOutputError(LLMError):
    """The output does not have the expected form (e.g. JSON that fails its schema)."""


class StructuredOutputUnsupportedError(LLMError):
    """This backend cannot enforce the requested structured output (named in the message)."""


class ServerStartError(LLMError):
    """A local vLLM server did not become healthy; the message has the tail of its log."""
