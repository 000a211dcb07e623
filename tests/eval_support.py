"""Fixtures for the batch-evaluation tests that need no real model: a scripted OpenAI-compatible
server whose behaviour a test switches mid-run (answer, stall, fail with 503), a socket that
accepts connections and never answers, and a small NExT-QA-format slice with captions.

The scripted server answers ``GET /v1/models`` with one model, ``tiny``, and each chat completion
as its current ``mode`` says: ``answer`` (the option letter ``A``, after ``delay_s``), ``stall``
(no answer until the server stops), ``fail`` (HTTP 503); the first ``fail_first`` chat requests
fail with 503 whatever the mode. It counts the chat requests it received."""

from __future__ import annotations

import csv
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

__all__ = ["Scripted", "nextqa_slice", "scripted_server", "silent_socket"]

FIELDS = ["video", "frame_count", "width", "height", "question", "answer", "qid", "type",
          "a0", "a1", "a2", "a3", "a4"]  # fmt: skip


def completion(text: str) -> bytes:
    return json.dumps({
        "id": "c", "object": "chat.completion", "created": 0, "model": "tiny",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }).encode()  # fmt: skip


@dataclass
class Scripted:
    url: str
    mode: str = "answer"
    delay_s: float = 0.0
    fail_first: int = 0
    chats: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    first_chat: threading.Event = field(default_factory=threading.Event)


_COUNT = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer
    state: Scripted

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            models = {
                "object": "list",
                "data": [
                    {"id": "tiny", "object": "model", "root": "/models/tiny", "owned_by": "x"}
                ],
            }
            self._send(200, json.dumps(models).encode())
        else:
            self._send(404, b"{}")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        state = self.state
        with _COUNT:
            state.chats += 1
            number = state.chats
        state.first_chat.set()
        if state.mode == "stall":
            state.stop.wait()
            return
        if state.mode == "fail" or number <= state.fail_first:
            self._send(503, b'{"error": {"message": "overloaded"}}')
            return
        if state.delay_s:
            state.stop.wait(state.delay_s)
        self._send(200, completion("A"))


@pytest.fixture
def scripted_server() -> Iterator[Scripted]:
    state = Scripted(url="")
    handler = type("Handler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.stop.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def silent_socket() -> Iterator[str]:
    """``http://127.0.0.1:PORT/v1`` of a socket that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    accepted: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not done.is_set():
            try:
                accepted.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    finally:
        done.set()
        thread.join()
        for conn in accepted:
            conn.close()
        sock.close()


def nextqa_slice(root: Path, count: int = 3) -> tuple[Path, Path, list[str]]:
    """A NExT-QA val-format CSV of ``count`` questions on two videos, a captions file for both,
    and the sample keys."""
    rows = [
        {"video": f"vid{i % 2}", "frame_count": "300", "width": "320", "height": "240",
         "question": f"what does the child do {i}", "answer": str(i % 5), "qid": str(i),
         "type": "CW", "a0": "plays", "a1": "runs", "a2": "sits", "a3": "eats", "a4": "jumps"}
        for i in range(count)
    ]  # fmt: skip
    ann = root / "val.csv"
    with ann.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    captions = {f"vid{v}": [{"start": 0, "end": 4, "caption": "a child plays with a dog"}]
                for v in range(2)}  # fmt: skip
    cap = root / "captions.json"
    cap.write_text(json.dumps(captions))
    return ann, cap, [f"{r['video']}_{r['qid']}" for r in rows]
