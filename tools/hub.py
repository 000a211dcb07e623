"""Is the model hub reachable? Asked once per process, in seconds, so that a machine without hub
access fails a missing model in one line instead of after minutes of download retries.

Offline when ``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE`` is set (no network use at all);
otherwise one ``HEAD`` request to the hub endpoint (``HF_ENDPOINT``, default huggingface.co) with a
few seconds' deadline, run on a daemon thread so neither DNS nor a silent proxy can stall it. Any
HTTP answer counts as reachable. Loads then use ``local_files_only=True`` when the hub is not
reachable (:func:`vidagent.tools.models.load_pretrained`): a cached model still loads, a missing
one fails at once.
"""

from __future__ import annotations

import os
import threading

DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_TIMEOUT_S = 3.0
_TRUE = {"1", "on", "true", "yes"}

_state: dict[str, bool] = {}
_lock = threading.Lock()


def offline_by_env() -> bool:
    """``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` set to a true value."""
    return any(
        os.environ.get(name, "").strip().lower() in _TRUE
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "").strip().rstrip("/") or DEFAULT_ENDPOINT


def hub_reachable(timeout_s: float | None = None) -> bool:
    """True when the hub answers within ``timeout_s`` (default :data:`PROBE_TIMEOUT_S`);
    remembered per endpoint for the process."""
    if offline_by_env():
        return False
    timeout_s = PROBE_TIMEOUT_S if timeout_s is None else timeout_s
    url = endpoint()
    with _lock:
        if url in _state:
            return _state[url]
    answered = threading.Event()

    def ask() -> None:
        import httpx

        try:
            httpx.head(url, timeout=timeout_s, follow_redirects=False)
        except (httpx.HTTPError, OSError, ValueError):
            return
        answered.set()

    thread = threading.Thread(target=ask, name="vidagent-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout_s + 0.5)
    reachable = answered.is_set()
    with _lock:
        _state[url] = reachable
    return reachable


def forget() -> None:
    """Drop the remembered answers (tests; a long process whose network changed)."""
    with _lock:
        _state.clear()
