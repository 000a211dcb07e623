"""A client that goes away in the middle of a streamed answer: the server stops that turn, drops
it from the conversation and frees the session for the next question. Runs the app under uvicorn
(a real socket, so the disconnect is real) with the scripted model and fake perception of the API
tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from langchain_core.messages import AIMessageChunk
from test_web_api import FakeBackend, text
from test_web_browser import free_port

from vidagent.testing.synth import SyntheticVideo
from vidagent.web import ServeConfig, create_app


def slow_answer(chunks: int, pause_s: float) -> Iterator[AIMessageChunk]:
    """A long answer, as a big model on a busy server gives it."""
    for i in range(chunks):
        time.sleep(pause_s)
        yield AIMessageChunk(content=f"word{i} ")


def test_a_dropped_client_stops_the_turn_and_frees_the_session(
    tmp_path: Path, h264_video: SyntheticVideo
) -> None:
    import uvicorn

    generated: list[int] = []

    def counted() -> Iterator[AIMessageChunk]:
        for chunk in slow_answer(600, 0.05):  # 30 s if nobody stopped it
            generated.append(1)
            yield chunk

    backend = FakeBackend(tmp_path / "store", [counted(), text("second ", "answer")])
    app = create_app(ServeConfig(data_dir=tmp_path / "data", max_rounds=0), backend=backend)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        api = f"http://127.0.0.1:{port}/api"
        data = h264_video.path.read_bytes()
        video = httpx.post(f"{api}/videos", files={"file": ("a.mp4", data, "video/mp4")}).json()
        httpx.post(f"{api}/videos/{video['id']}/timeline")
        while httpx.get(f"{api}/videos/{video['id']}/timeline").json()["status"] != "done":
            time.sleep(0.05)
        session = httpx.post(f"{api}/sessions", json={"video_id": video["id"]}).json()["id"]
        with httpx.stream("POST", f"{api}/sessions/{session}/messages", json={"text": "q1"}) as r:
            first = next(line for line in r.iter_lines() if line.startswith("data:"))
        assert "word0" in first  # the answer was streaming; now the client is gone

        deadline = time.monotonic() + 10
        while True:
            again = httpx.post(f"{api}/sessions/{session}/messages", json={"text": "q2"})
            if again.status_code != 409 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert again.status_code == 200, again.text
        assert "second " in again.text and "event: done" in again.text
        assert len(generated) < 600  # the dropped turn was stopped, not run to its end
        # the dropped turn left no trace: the model saw only the second question
        sent = backend.model.sent[-1]
        assert [m.content for m in sent if m.type == "human"] == ["q2"]
        assert httpx.get(f"{api}/sessions/{session}").json()["turns"] == 1
    finally:
        server.should_exit = True
        thread.join(timeout=10)
