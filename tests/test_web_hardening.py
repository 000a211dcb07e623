"""The web server under clients that hang up, many sessions, and other web pages.

- A client that goes away at any point of a streamed answer (before the response starts, before
  the first event, between events, during a tool call, while the model is still generating) frees
  its session at once, even while the abandoned model call or tool is still running; the session
  then resets and answers again with nothing of the dropped turns in its conversation, and the
  server keeps answering everyone else meanwhile.
- Reset never blocks: it cancels the running answer. Many concurrent resets of a busy session all
  answer in bounded time (they once each held a server thread for good), and an answer held by a
  silent model does not keep the server from stopping.
- Sessions are capped (``max_sessions``, least recently used idle one replaced, 503 when all are
  busy) and expire when idle.
- DNS rebinding and cross-site requests are refused; every response carries the security headers,
  and the page still works under its Content-Security-Policy (real Chromium).

Real uvicorn on a real loopback socket (so disconnects are real), the fake perception of the API
tests, and a chat model scripted per question whose replies can be held at a gate.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import Field
from test_web_api import LOCAL, FakeBackend, serve_cli, text, tool_call, upload
from test_web_browser import CHROMIUM_ARGS, chromium, free_port

from vidagent.testing.synth import SyntheticVideo
from vidagent.web import ServeConfig, create_app

__all__ = ["chromium"]

HOLD_S = 60.0
"""The longest a gate holds a model or a tool (a test that fails never hangs for longer)."""


class KeyedModel(BaseChatModel):
    """Replies by question: ``scripts[question](after_tool)`` gives the chunks; else "fine"."""

    scripts: dict[str, Any] = Field(default_factory=dict)
    sent: list[list[BaseMessage]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "keyed"

    def bind_tools(self, tools: Any, *, tool_choice: Any = None, **kwargs: Any) -> Any:
        return self

    def _generate(self, messages: Any, stop: Any = None, **kwargs: Any) -> ChatResult:
        raise NotImplementedError

    def _stream(self, messages: Any, stop: Any = None, **kwargs: Any) -> Iterator[Any]:
        self.sent.append(list(messages))
        question = next(str(m.content) for m in reversed(messages) if m.type == "human")
        script = self.scripts.get(question)
        chunks = script(messages[-1].type == "tool") if script else iter(text("fine"))
        for chunk in chunks:
            yield ChatGenerationChunk(message=chunk)

    def humans(self) -> list[str]:
        """The questions of the conversation the model was last sent."""
        return [str(m.content) for m in self.sent[-1] if m.type == "human"]


@dataclass
class Served:
    """The app under uvicorn on a free loopback port, with one perceived video."""

    port: int
    model: KeyedModel
    video_id: str
    gates: list[threading.Event] = field(default_factory=list)
    stop: Callable[[float], bool] = lambda _: True
    """Ask the server to stop (as SIGTERM does); whether it stopped within the seconds given."""

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def gate(self) -> threading.Event:
        gate = threading.Event()
        self.gates.append(gate)
        return gate

    def session(self) -> str:
        reply = httpx.post(f"{self.api}/sessions", json={"video_id": self.video_id}, timeout=5)
        assert reply.status_code == 201, reply.text
        return str(reply.json()["id"])

    def ask(self, sid: str, question: str, within_s: float = 10.0) -> httpx.Response:
        """Ask, waiting up to ``within_s`` for the session to be free; the whole answer."""
        deadline = time.monotonic() + within_s
        while True:
            reply = httpx.post(
                f"{self.api}/sessions/{sid}/messages", json={"text": question}, timeout=10
            )
            if reply.status_code != 409 or time.monotonic() > deadline:
                return reply
            time.sleep(0.05)


def chat_workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("chat-")]


def wait_for(check: Callable[[], bool], within_s: float = 10.0) -> bool:
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def serve(tmp_path: Path, h264_video: SyntheticVideo) -> Iterator[Callable[..., Served]]:
    """``serve(**config)`` starts a server; all are stopped (their gates opened) afterwards."""
    import uvicorn

    running: list[tuple[Served, uvicorn.Server, threading.Thread]] = []

    def start(uvicorn_options: dict[str, Any] | None = None, **config: Any) -> Served:
        root = tmp_path / f"server{len(running)}"
        backend = FakeBackend(root / "store", [])
        backend.model = KeyedModel()  # type: ignore[assignment]
        app = create_app(ServeConfig(data_dir=root / "data", **config), backend=backend)
        port = free_port()
        options = {"log_level": "warning", **(uvicorn_options or {})}
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **options))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        assert wait_for(lambda: server.started, 20)
        api = f"http://127.0.0.1:{port}/api"
        data = h264_video.path.read_bytes()
        files = {"file": ("a.mp4", data, "video/mp4")}
        video = httpx.post(f"{api}/videos", files=files, timeout=30).json()["id"]
        httpx.post(f"{api}/videos/{video}/timeline", timeout=5)
        assert wait_for(
            lambda: httpx.get(f"{api}/videos/{video}/timeline").json()["status"] == "done", 30
        )
        served = Served(port, backend.model, video)  # type: ignore[arg-type]

        def stop(within_s: float) -> bool:
            server.should_exit = True
            thread.join(timeout=within_s)
            return not thread.is_alive()

        served.stop = stop
        running.append((served, server, thread))
        return served

    yield start
    for served, server, thread in running:
        for gate in served.gates:
            gate.set()
        server.should_exit = True
        thread.join(timeout=15)


def held(gate: threading.Event, before: list[str], after: int = 0) -> Iterator[AIMessageChunk]:
    """Chunks ``before``, then wait at ``gate``, then ``after`` more chunks."""
    for part in before:
        yield AIMessageChunk(content=part)
    gate.wait(HOLD_S)
    for i in range(after):
        time.sleep(0.01)
        yield AIMessageChunk(content=f"late{i} ")


def hang_up_before_the_response(served: Served, sid: str, question: str) -> None:
    """Send the request and close the socket at once, before any byte of the answer."""
    body = json.dumps({"text": question}).encode()
    head = (
        f"POST /api/sessions/{sid}/messages HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
        sock.sendall(head + body)


def hang_up_after(served: Served, sid: str, question: str, event: str | None) -> None:
    """Ask, read until the first ``event`` (None: the headers only), then hang up."""
    url = f"{served.api}/sessions/{sid}/messages"
    with httpx.stream("POST", url, json={"text": question}, timeout=10) as reply:
        assert reply.status_code == 200
        if event is not None:
            assert any(line == f"event: {event}" for line in reply.iter_lines())


def test_a_client_dropped_at_any_point_frees_its_session_at_once(
    serve: Callable[..., Served], monkeypatch: pytest.MonkeyPatch
) -> None:
    from vidagent.chat.toolbox import Toolbox

    tool_gate, tool_running = threading.Event(), threading.Event()
    real_run = Toolbox.run

    def slow_tool(self: Toolbox, name: str, arguments: Any) -> str:
        if name == "actions_between":  # a tool that takes long (a re-captioning on a GPU)
            tool_running.set()
            tool_gate.wait(HOLD_S)
        return real_run(self, name, arguments)

    monkeypatch.setattr(Toolbox, "run", slow_tool)
    served = serve(max_rounds=1, tools=["actions_between", "timeline_overview"])
    served.gates.append(tool_gate)
    thinking, stalled = served.gate(), served.gate()
    streamed: list[int] = []

    def steady(_: bool) -> Iterator[AIMessageChunk]:
        for i in range(400):  # 20 s if nobody stopped it
            time.sleep(0.05)
            streamed.append(i)
            yield AIMessageChunk(content=f"word{i} ")

    late: list[int] = []

    def stalls(_: bool) -> Iterator[AIMessageChunk]:
        for chunk in held(stalled, ["thinking "], after=200):
            late.append(1)
            yield chunk

    served.model.scripts.update(
        {
            "before-response": lambda _: held(thinking, [], after=50),
            "before-first-event": lambda _: held(thinking, [], after=50),
            "between-events": steady,
            "in-a-tool": lambda after_tool: (
                iter(text("after the tool"))
                if after_tool
                else iter(tool_call("actions_between", {"start_s": 0, "end_s": 4}))
            ),
            "while-generating": stalls,
        }
    )
    sid = served.session()
    asked: list[str] = []

    def answered_next(label: str) -> None:
        question = f"ok after {label}"
        reply = served.ask(sid, question)
        assert reply.status_code == 200, f"after a drop {label}: {reply.status_code} {reply.text}"
        assert "event: done" in reply.text and "fine" in reply.text, reply.text
        asked.append(question)
        # nothing of the dropped turns: the model saw only the questions that were answered
        assert served.model.humans() == asked, label

    hang_up_before_the_response(served, sid, "before-response")
    answered_next("before the response")
    hang_up_after(served, sid, "before-first-event", None)
    answered_next("before the first event")
    hang_up_after(served, sid, "between-events", "text")
    answered_next("between events")
    hang_up_after(served, sid, "in-a-tool", "tool_call")
    assert tool_running.wait(15)
    answered_next("during a tool call")
    hang_up_after(served, sid, "while-generating", "text")
    answered_next("while the model is generating")

    # The model and the tool of two dropped turns are still held: the server answers everyone.
    assert not tool_gate.is_set() and not stalled.is_set()
    assert httpx.get(f"{served.api}/server", timeout=5).status_code == 200
    assert len(httpx.get(f"{served.api}/videos", timeout=5).json()) == 1
    assert httpx.get(f"{served.api}/sessions/{sid}", timeout=5).json()["turns"] == len(asked)

    assert httpx.post(f"{served.api}/sessions/{sid}/reset", timeout=5).status_code == 204
    assert httpx.get(f"{served.api}/sessions/{sid}").json()["turns"] == 0
    asked.clear()
    answered_next("a reset")

    for gate in served.gates:
        gate.set()
    assert wait_for(lambda: not chat_workers())  # the abandoned workers stopped...
    assert len(late) < 200 and len(streamed) < 400  # ...at their next event, not at the end
    answered_next("the abandoned turns ended")  # and left the conversation alone
    assert httpx.get(f"{served.api}/sessions/{sid}").json()["turns"] == 2


def test_many_concurrent_resets_of_a_busy_session_answer_at_once(
    serve: Callable[..., Served],
) -> None:
    served = serve(max_rounds=0)
    sid = served.session()
    resets, gets = 64, 8  # more than the server's 40 worker threads
    for round_ in range(3):
        gate = served.gate()
        question = f"stall {round_}"
        served.model.scripts[question] = lambda _, g=gate: held(g, ["thinking "], after=5)
        seen: list[str] = []
        first = threading.Event()

        def read(
            q: str = question, out: list[str] = seen, started: threading.Event = first
        ) -> None:
            url = f"{served.api}/sessions/{sid}/messages"
            with httpx.stream("POST", url, json={"text": q}, timeout=HOLD_S) as reply:
                for line in reply.iter_lines():
                    out.append(line)
                    started.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        assert first.wait(15)
        url = f"{served.api}/sessions/{sid}/reset"
        threads_before = threading.active_count()
        begun = time.monotonic()
        with ThreadPoolExecutor(resets + gets) as pool:
            posts = [pool.submit(httpx.post, url, timeout=15) for _ in range(resets)]
            info = f"{served.api}/server"
            infos = [pool.submit(httpx.get, info, timeout=15) for _ in range(gets)]
            codes = [f.result().status_code for f in posts]
            assert [f.result().status_code for f in infos] == [200] * gets
        assert codes == [204] * resets and time.monotonic() - begun < 20  # a busy machine
        # a reset takes no server thread (the GETs may have started a few pool workers)
        assert threading.active_count() - threads_before <= gets + 1
        reader.join(15)
        assert not reader.is_alive()  # the running answer was cancelled and its stream ended
        assert 'data: {"detail": "the conversation was reset"}' in seen, seen
        assert len(chat_workers()) <= round_ + 1  # one held worker per round, no more
        reply = served.ask(sid, f"after {round_}")
        assert reply.status_code == 200 and "event: done" in reply.text
        assert served.model.humans() == [f"after {round_}"]  # the reset cleared the conversation
    for gate in served.gates:
        gate.set()
    assert wait_for(lambda: not chat_workers())


def test_sessions_are_capped_the_least_recently_used_idle_one_makes_room(
    serve: Callable[..., Served],
) -> None:
    served = serve(max_sessions=2, max_rounds=0)
    first, second = served.session(), served.session()
    assert httpx.get(f"{served.api}/sessions/{first}").status_code == 200  # second is now LRU
    third = served.session()
    assert httpx.get(f"{served.api}/sessions/{second}").status_code == 404
    assert httpx.get(f"{served.api}/sessions/{first}").status_code == 200
    gate = served.gate()
    served.model.scripts["hold"] = lambda _: held(gate, ["thinking "])
    readers = []
    for sid in (first, third):  # both answering: neither can make room
        started = threading.Event()

        def read(sid: str = sid, started: threading.Event = started) -> None:
            url = f"{served.api}/sessions/{sid}/messages"
            with httpx.stream("POST", url, json={"text": "hold"}, timeout=HOLD_S) as reply:
                for _ in reply.iter_lines():
                    started.set()

        readers.append(threading.Thread(target=read, daemon=True))
        readers[-1].start()
        assert started.wait(15)
    full = httpx.post(f"{served.api}/sessions", json={"video_id": served.video_id}, timeout=5)
    assert full.status_code == 503 and full.headers["retry-after"] == "5"
    assert "all 2 chat sessions are answering" in full.json()["detail"]
    gate.set()
    for reader in readers:
        reader.join(15)
    fourth = served.session()  # once they answered, the least recently used one makes room
    assert httpx.get(f"{served.api}/sessions/{fourth}").status_code == 200


def perceived_client(root: Path, data: bytes, **config: Any) -> tuple[TestClient, str]:
    backend = FakeBackend(root / "store", [])
    app = create_app(ServeConfig(data_dir=root / "data", **config), backend=backend)
    client = TestClient(app, base_url=LOCAL)
    video = upload(client, "a.mp4", data).json()["id"]
    client.post(f"/api/videos/{video}/timeline")
    assert wait_for(
        lambda: client.get(f"/api/videos/{video}/timeline").json()["status"] == "done", 30
    )
    return client, video


def test_thousands_of_sessions_keep_at_most_max_sessions_and_idle_ones_expire(
    tmp_path: Path, h264_video: SyntheticVideo
) -> None:
    data = h264_video.path.read_bytes()
    client, video = perceived_client(tmp_path / "a", data, max_sessions=4)
    made = [client.post("/api/sessions", json={"video_id": video}) for _ in range(300)]
    assert {r.status_code for r in made} == {201}
    ids = [r.json()["id"] for r in made]
    alive = [i for i in ids if client.get(f"/api/sessions/{i}").status_code == 200]
    assert alive == ids[-4:]

    client, video = perceived_client(tmp_path / "b", data, session_idle_s=0.5)
    sid = client.post("/api/sessions", json={"video_id": video}).json()["id"]
    assert client.get(f"/api/sessions/{sid}").status_code == 200
    time.sleep(0.7)  # idle longer than session_idle_s
    gone = client.get(f"/api/sessions/{sid}")
    assert gone.status_code == 404 and "expired" in gone.json()["detail"]


def test_serve_wires_the_session_and_host_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VIDAGENT_API_KEY", raising=False)
    base = ["--llm-url", "http://127.0.0.1:9/v1", "--data-dir", str(tmp_path / "d")]
    result, ran = serve_cli(base, monkeypatch)
    assert result.exit_code == 0, result.output
    config = ran["app"].state.config
    assert (config.max_sessions, config.session_idle_s, config.host) == (64, 3600.0, "127.0.0.1")
    assert (
        ran["timeout_graceful_shutdown"] > 0
    )  # a held answer cannot keep the server from stopping
    options = ["--max-sessions", "5", "--session-idle-s", "60", "--allowed-host", "proxy.example"]
    result, ran = serve_cli([*base, *options], monkeypatch)
    assert result.exit_code == 0, result.output
    config = ran["app"].state.config
    assert (config.max_sessions, config.session_idle_s) == (5, 60.0)
    client = TestClient(ran["app"], base_url="http://proxy.example")
    assert client.get("/api/videos").status_code == 200
    assert client.get("/api/videos", headers={"Host": "evil.example"}).status_code == 400
    result, _ = serve_cli([*base, "--max-sessions", "0"], monkeypatch)
    assert result.exit_code != 0


def test_an_answer_held_by_a_silent_model_does_not_keep_the_server_from_stopping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, serve: Callable[..., Served]
) -> None:
    monkeypatch.delenv("VIDAGENT_API_KEY", raising=False)
    base = ["--llm-url", "http://127.0.0.1:9/v1", "--data-dir", str(tmp_path / "d")]
    _, ran = serve_cli(base, monkeypatch)  # run uvicorn as `vidagent serve` does
    options = {k: v for k, v in ran.items() if k not in ("app", "host", "port")}
    served = serve(uvicorn_options=options, max_rounds=0)
    gate = served.gate()
    served.model.scripts["hold"] = lambda _: held(gate, ["thinking "])
    sid = served.session()
    url = f"{served.api}/sessions/{sid}/messages"
    with httpx.stream("POST", url, json={"text": "hold"}, timeout=HOLD_S) as reply:
        lines = reply.iter_lines()  # kept: the client stays connected, reading
        assert next(lines) == "event: text"
        assert served.stop(options["timeout_graceful_shutdown"] + 15)
        with contextlib.suppress(httpx.RemoteProtocolError):  # cut at shutdown, not held
            list(lines)


def guarded_client(tmp_path: Path, **config: Any) -> TestClient:
    backend = FakeBackend(tmp_path / "store", [text("fine")])
    app = create_app(ServeConfig(data_dir=tmp_path / "data", **config), backend=backend)
    return TestClient(app, base_url=LOCAL)


def test_a_dns_rebinding_page_cannot_read_the_api(tmp_path: Path) -> None:
    client = guarded_client(tmp_path)
    for host in ("evil.example", "evil.example:8000", "127.0.0.1.evil.example", "10.0.0.7", ""):
        for path in ("/api/videos", "/api/server", "/"):
            refused = client.get(path, headers={"Host": host})
            assert refused.status_code == 400, (host, path, refused.text)
            assert "--allowed-host" in refused.json()["detail"]
            assert refused.headers["x-content-type-options"] == "nosniff"
    for host in ("127.0.0.1:8000", "localhost:8000", "LOCALHOST", "[::1]:8000", "localhost"):
        assert client.get("/api/videos", headers={"Host": host}).status_code == 200, host
    opted = guarded_client(tmp_path / "b", allowed_hosts=("chat.example",))
    assert opted.get("/api/videos", headers={"Host": "chat.example"}).status_code == 200
    assert opted.get("/api/videos", headers={"Host": "evil.example"}).status_code == 400
    anyone = guarded_client(tmp_path / "c", allowed_hosts=("*",))
    assert anyone.get("/api/videos", headers={"Host": "evil.example"}).status_code == 200
    lan = guarded_client(tmp_path / "d", host="0.0.0.0")  # every interface: its addresses
    assert lan.get("/api/videos", headers={"Host": "192.168.1.20:8000"}).status_code == 200
    assert lan.get("/api/videos", headers={"Host": "evil.example"}).status_code == 400
    named = guarded_client(tmp_path / "e", host="10.1.2.3")
    assert named.get("/api/videos", headers={"Host": "10.1.2.3:8000"}).status_code == 200


def test_other_sites_cannot_upload_or_start_perception_through_the_browser(
    tmp_path: Path, h264_video: SyntheticVideo
) -> None:
    client = guarded_client(tmp_path)
    data = h264_video.path.read_bytes()
    evil = {"Origin": "http://evil.example"}
    for headers in (
        evil,
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:9999"},  # another local server's page
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ):
        refused = upload(client, "a.mp4", data, headers=headers)
        assert refused.status_code == 403, (headers, refused.text)
        assert "cross-site request refused" in refused.json()["detail"]
    assert client.get("/api/videos").json() == []
    own = {"Origin": LOCAL, "Sec-Fetch-Site": "same-origin"}
    video = upload(client, "a.mp4", data, headers=own)
    assert video.status_code == 201
    timeline = f"/api/videos/{video.json()['id']}/timeline"
    assert client.post(timeline, headers=evil).status_code == 403
    assert client.get(timeline).json()["status"] == "idle"  # nothing was started
    assert client.post(timeline).status_code == 200  # curl and scripts send no Origin
    assert client.get("/api/videos", headers=evil).status_code == 200  # reads: the browser's SOP


def test_every_response_carries_the_security_headers(tmp_path: Path) -> None:
    client = guarded_client(tmp_path)
    for path in ("/", "/static/app.js", "/api/server", "/api/videos", "/api/videos/nope"):
        reply = client.get(path)
        assert reply.headers["x-content-type-options"] == "nosniff", path
        assert reply.headers["x-frame-options"] == "DENY", path
        assert reply.headers["referrer-policy"] == "no-referrer", path
        csp = reply.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self';" in csp, path
        assert "unsafe-inline" not in csp, path
    docs = client.get("/docs")
    assert docs.status_code == 200 and docs.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in docs.headers["content-security-policy"]
    # The page's policy allows no inline code, and the page has none.
    from html.parser import HTMLParser

    inline: list[str] = []

    class Find(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            names = {k for k, _ in attrs}
            if tag == "style" or "style" in names or any(n.startswith("on") for n in names):
                inline.append(tag)
            if tag == "script" and "src" not in names:
                inline.append("script")

    Find().feed(client.get("/").text)
    assert inline == []


def test_a_turn_frees_its_session_when_closed_cancelled_or_collected(
    tmp_path: Path, h264_video: SyntheticVideo
) -> None:
    from vidagent.web.sessions import SessionBusy, Sessions

    backend = FakeBackend(tmp_path / "store", [])
    model = backend.model = KeyedModel()  # type: ignore[assignment]
    gate = threading.Event()
    model.scripts["hold"] = lambda _: held(gate, ["thinking "], after=3)
    sessions = Sessions(backend, ServeConfig(data_dir=tmp_path / "data", max_rounds=0))
    session = sessions.create("v", backend.perceive(h264_video.path))

    turn = sessions.start_turn(session, "never streamed")
    with pytest.raises(SessionBusy):
        sessions.start_turn(session, "two at once")
    del turn
    gc.collect()  # a turn nobody streams or holds any more
    assert not session.busy and sessions.workers == 0

    async def scenario() -> None:
        async def first_event(turn_events: Any) -> str:
            return str(await anext(turn_events))

        # closed after its first event, the model still held
        events = sessions.start_turn(session, "hold").events()
        assert "thinking" in await first_event(events)
        await events.aclose()
        assert not session.busy
        # cancelled while it waits for the next event
        events = sessions.start_turn(session, "hold").events()
        assert "thinking" in await first_event(events)
        task = asyncio.create_task(first_event(events))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not session.busy
        # dropped (garbage collected) after its first event
        events = sessions.start_turn(session, "hold").events()
        assert "thinking" in await first_event(events)
        del events
        gc.collect()
        await asyncio.sleep(0.05)  # the loop closes the generator it was told about
        assert not session.busy
        # and the session still answers, with none of the dropped questions in its conversation
        out = [e async for e in sessions.start_turn(session, "next").events()]
        assert out[-1].startswith("event: done") and model.humans() == ["next"]

        # deleting a busy session ends its stream at once
        events = sessions.start_turn(session, "hold").events()
        assert "thinking" in await first_event(events)
        assert sessions.delete(session.id) and sessions.get(session.id) is None
        rest = [e async for e in events]
        assert rest == ['event: error\ndata: {"detail": "the chat session was deleted"}\n\n']

    asyncio.run(scenario())
    gate.set()
    assert wait_for(lambda: not chat_workers()) and sessions.workers == 0


def test_abandoned_workers_are_bounded_and_a_question_beyond_is_503(
    tmp_path: Path, h264_video: SyntheticVideo
) -> None:
    from vidagent.web.sessions import Sessions, TooManyTurns

    backend = FakeBackend(tmp_path / "store", [])
    model = backend.model = KeyedModel()  # type: ignore[assignment]
    gate = threading.Event()
    model.scripts["hold"] = lambda _: held(gate, ["thinking "], after=3)
    config = ServeConfig(data_dir=tmp_path / "data", max_rounds=0, max_sessions=1)
    sessions = Sessions(backend, config)
    session = sessions.create("v", backend.perceive(h264_video.path))

    async def abandon() -> None:  # start a turn, read its first event, hang up
        events = sessions.start_turn(session, "hold").events()
        assert "thinking" in str(await anext(events))
        await events.aclose()

    async def scenario() -> None:
        await abandon()
        await abandon()  # two workers still held in the model: 2 x max_sessions
        assert not session.busy and len(chat_workers()) == 2
        with pytest.raises(TooManyTurns):
            sessions.start_turn(session, "one more")
        gate.set()  # the held workers stop at their next event
        assert wait_for(lambda: not chat_workers()) and sessions.workers == 0
        out = [e async for e in sessions.start_turn(session, "now").events()]
        assert out[-1].startswith("event: done")

    try:
        asyncio.run(scenario())
    finally:
        gate.set()


@pytest.mark.slow
def test_the_page_works_under_its_content_security_policy(
    chromium: str, serve: Callable[..., Served], h264_video: SyntheticVideo
) -> None:
    from playwright.sync_api import sync_playwright

    served = serve(max_rounds=0)
    served.model.scripts["What happens?"] = lambda _: iter(text("At ", "00:05", " a cut."))
    url = f"http://127.0.0.1:{served.port}/"
    assert "script-src 'self'" in httpx.get(url).headers["content-security-policy"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            refused: list[str] = []  # what the browser blocked under the policy
            page.on("console", lambda m: refused.append(m.text) if "Refused" in m.text else None)
            page.goto(url)
            page.set_input_files("#upload-input", str(h264_video.path))  # same bytes: same id
            page.wait_for_selector("#timeline li.segment >> nth=3", timeout=30_000)
            page.fill("#question", "What happens?")
            page.press("#question", "Enter")
            page.wait_for_selector('.msg.assistant[data-done="true"]', timeout=30_000)
            assert page.locator(".msg.assistant a.ts").all_text_contents() == ["00:05"]
            page.click("#reset")  # POST from the page itself: same origin, accepted
            page.wait_for_function(
                "() => document.getElementById('messages').children.length === 0"
            )
            assert errors == [] and refused == []
            # the policy is in force: an inline script injected into the page does not run
            ran = page.evaluate(
                """() => { const s = document.createElement('script');
                  s.textContent = 'window.inlineRan = 1'; document.head.append(s);
                  return window.inlineRan === 1; }"""
            )
            assert ran is False
        finally:
            browser.close()
