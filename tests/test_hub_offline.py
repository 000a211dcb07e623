"""Without hub access a missing model fails in one line within seconds, not after retries."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from vidagent.tools import hub
from vidagent.tools.models import ModelLoadError, load_pretrained


@pytest.fixture
def silent_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A hub endpoint that accepts connections and never answers (a dead proxy, a firewall)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", url)
    hub.forget()
    yield url
    hub.forget()
    sock.close()


def test_offline_env_means_no_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(threading, "Thread", None)  # a probe would crash here
    hub.forget()
    assert hub.hub_reachable() is False


def test_a_silent_hub_is_unreachable_after_the_probe_timeout(silent_endpoint: str) -> None:
    assert hub.hub_reachable(timeout_s=0.5) is False


def test_an_answering_hub_is_reachable(monkeypatch: pytest.MonkeyPatch) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    hub.forget()
    try:
        assert hub.hub_reachable(timeout_s=2.0) is True
    finally:
        server.shutdown()
        hub.forget()


def test_unreachable_hub_loads_local_files_only_and_fails_in_one_line(
    silent_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub, "PROBE_TIMEOUT_S", 0.5)
    seen: dict[str, Any] = {}

    def loader(source: str, **kwargs: Any) -> None:
        seen.update(kwargs, source=source)
        raise OSError(f"{source} is not in the cache and local_files_only is set")

    with pytest.raises(ModelLoadError) as err:
        load_pretrained(loader, "some-org/some-model")
    assert seen == {"source": "some-org/some-model", "local_files_only": True}
    message = str(err.value)
    assert "\n" not in message and "hub is unreachable" in message


def test_a_real_transformers_load_of_a_missing_model_fails_fast(silent_endpoint: str) -> None:
    from transformers import AutoConfig

    hub.hub_reachable(timeout_s=0.5)  # remembered: the load below does not probe again
    with pytest.raises(ModelLoadError, match="hub is unreachable"):
        load_pretrained(AutoConfig.from_pretrained, "some-org/not-in-any-cache")
