"""The replicas of an OpenAI-compatible backend: their counters and the abort signal.

:class:`Replica` is one base URL's state (requests sent, failed, in flight; when it is out and for
how long); :class:`ReplicaStats` is what callers see of it. :class:`ReplicaAbortedError` turns an
answer that vLLM aborted (shutdown) into a lost connection, so the request fails over.
"""

from __future__ import annotations

from typing import Any

import httpx
import openai

from vidagent.llm.types import LLMRecord


class ReplicaAbortedError(openai.APIConnectionError):
    """The server answered 200 with ``finish_reason="abort"``: vLLM does that for the requests in
    flight when it shuts down (SIGTERM) or its engine fails. The partial text is not an answer;
    the try counts as a lost connection, so the replica is taken out and the request fails over."""

    def __init__(self, base_url: str) -> None:
        url = f"{base_url.rstrip('/')}/chat/completions"
        # openai>=3 is typed for httpx2 but works with httpx requests (as for its client above)
        request: Any = httpx.Request("POST", url)
        super().__init__(message=f"{url}: the server aborted the request", request=request)


class ReplicaStats(LLMRecord):
    """Counters of one base URL: HTTP tries sent and failed, requests in flight now and at most."""

    url: str
    sent: int
    failed: int
    outstanding: int
    peak_outstanding: int


class Replica:
    def __init__(self, url: str) -> None:
        self.url = url
        self.sent = 0
        self.failed = 0
        self.outstanding = 0
        self.peak_outstanding = 0
        self.down_until = 0.0
        self.strikes = 0  # outages in a row; 0 once it answers again

    def usable(self, now: float) -> bool:
        """Not cooling down, and not being probed by another request after an outage."""
        return self.down_until <= now and not (self.strikes and self.outstanding)


def server_error(exc: BaseException) -> bool:
    """A 5xx answer: the replica is broken (engine dead, gateway failing), not the request."""
    return isinstance(exc, openai.APIStatusError) and exc.status_code >= 500
