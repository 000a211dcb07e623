"""The web app's REST API through FastAPI's TestClient: real uploads of real videos, real decoding
and segmentation, a scripted LangChain chat model in place of the LLM server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import Field

from vidagent.api.deps import Deps
from vidagent.testing.synth import SyntheticVideo
from vidagent.web import ServeConfig, create_app

KEY = "s3cret-key"
LOCAL = "http://127.0.0.1:8000"  # the server checks the Host header: requests name its address


class ScriptedModel(BaseChatModel):
    """Streams scripted replies, one per request; an exception in the script is raised."""

    replies: list[Any]
    sent: list[list[BaseMessage]] = Field(default_factory=list)
    bound: list[tuple[list[str], Any]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Any, *, tool_choice: Any = None, **kwargs: Any) -> Any:
        self.bound.append(([t["function"]["name"] for t in tools], tool_choice))
        return self

    def _generate(self, messages: Any, stop: Any = None, **kwargs: Any) -> ChatResult:
        raise NotImplementedError

    def _stream(self, messages: Any, stop: Any = None, **kwargs: Any) -> Iterator[Any]:
        self.sent.append(list(messages))
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        for chunk in reply:
            yield ChatGenerationChunk(message=chunk)


def tool_call(name: str, args: dict[str, Any]) -> list[AIMessageChunk]:
    call = {"name": name, "args": json.dumps(args), "id": "call_1", "index": 0}
    return [AIMessageChunk(content="", tool_call_chunks=[call])]  # type: ignore[list-item]


def text(*parts: str) -> list[AIMessageChunk]:
    return [AIMessageChunk(content=p) for p in parts]


class FakeBackend:
    """Real decoding and fixed 2 s segments (no models), a captioned timeline, a scripted chat."""

    def __init__(self, store_dir: Path, replies: list[Any]) -> None:
        self.store_dir = store_dir
        self.model = ScriptedModel(replies=replies)
        self.perceived: list[Path] = []

    def perceive(self, path: Path, progress: Any = None) -> Deps:
        from vidagent.core.records import Caption
        from vidagent.store.perception import PerceptionStore
        from vidagent.tools.perceive import perceive

        store = PerceptionStore(self.store_dir)
        timeline = perceive(path, tools=[], store=store)
        for s in timeline.segments:
            s.captions.append(Caption(text=f"caption {s.index}"))
        self.perceived.append(path)
        return Deps(timeline, store, None, None, None, None)

    def chat_model(self) -> BaseChatModel:
        return self.model

    def close(self) -> None:
        pass


def make_client(tmp_path: Path, replies: list[Any] | None = None, **config: Any) -> TestClient:
    backend = FakeBackend(tmp_path / "store", replies or [])
    app = create_app(ServeConfig(data_dir=tmp_path / "data", **config), backend=backend)
    client = TestClient(app, base_url=LOCAL)
    client.backend = backend  # type: ignore[attr-defined]
    return client


def upload(client: TestClient, name: str, data: bytes, **kwargs: Any) -> Any:
    return client.post("/api/videos", files={"file": (name, data, "video/mp4")}, **kwargs)


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_an_uploaded_video_is_listed_described_and_kept_in_the_data_dir(
    tmp_path: Path, h264_video: SyntheticVideo
) -> None:
    client = make_client(tmp_path)
    data = h264_video.path.read_bytes()
    reply = upload(client, "kitchen.mp4", data)
    assert reply.status_code == 201, reply.text
    video = reply.json()
    assert video["name"] == "kitchen.mp4" and video["source"] == "upload"
    assert video["size_bytes"] == len(data) and video["timeline_status"] == "idle"
    (stored,) = [p for p in files_under(tmp_path / "data") if p.suffix == ".mp4"]
    assert stored.parent == tmp_path / "data" / "uploads" and stored.read_bytes() == data
    assert [v["id"] for v in client.get("/api/videos").json()] == [video["id"]]
    info = client.get(f"/api/videos/{video['id']}").json()
    assert info["duration"] == pytest.approx(8.0) and info["codec"] == "h264"
    assert (info["width"], info["height"], info["num_frames"]) == (160, 120, 80)
    again = upload(client, "same-bytes.mp4", data)  # the same content is kept once
    assert again.json()["id"] == video["id"] and len(client.get("/api/videos").json()) == 1


def test_a_too_large_upload_is_413_with_the_limit_and_leaves_no_file(
    tmp_path: Path, h264_video: SyntheticVideo
) -> None:
    client = make_client(tmp_path, max_upload_mb=0.01)  # 10 KiB; the video is ~27 KB
    data = h264_video.path.read_bytes()
    reply = upload(client, "big.mp4", data)
    assert reply.status_code == 413
    assert reply.json()["detail"] == "big.mp4: too large; the limit is 0.01 MB"
    # Without a Content-Length (chunked), the limit is enforced while the bytes stream in.
    boundary = "XyZ"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()
    body = head + data + f"\r\n--{boundary}--\r\n".encode()
    chunks = (body[i : i + 4096] for i in range(0, len(body), 4096))
    reply = client.post(
        "/api/videos",
        content=chunks,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert reply.status_code == 413 and "too large" in reply.json()["detail"]
    assert files_under(tmp_path / "data") == []


def test_a_file_that_is_not_a_video_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    client = make_client(tmp_path)
    reply = upload(client, "notes.mp4", b"these are my notes, not a video\n" * 20)
    assert reply.status_code == 415
    detail = reply.json()["detail"]
    assert detail.startswith("notes.mp4: not a usable video: ") and "tmp" not in detail
    assert upload(client, "empty.mp4", b"").json()["detail"] == "empty.mp4: the file is empty"
    no_file = client.post("/api/videos", data={"other": "x"}, files={"x": ("a", b"1")})
    assert no_file.status_code == 400 and "multipart field 'file'" in no_file.json()["detail"]
    assert client.post("/api/videos", json={"file": "x"}).status_code == 415
    assert files_under(tmp_path / "data") == []


def test_a_path_in_the_file_name_never_leaves_the_data_dir(
    tmp_path: Path, h264_video: SyntheticVideo
) -> None:
    root = tmp_path / "srv"
    root.mkdir()
    client = make_client(root)
    for name in ("../../evil.mp4", "..\\..\\evil2.mp4", "/etc/evil3.mp4"):
        reply = upload(client, name, h264_video.path.read_bytes())
        assert reply.status_code == 201 and reply.json()["name"].startswith("evil")
    assert not list(tmp_path.glob("evil*")) and not (root / "evil.mp4").exists()
    stored = files_under(root / "data")
    assert stored and all(p.parent == root / "data" / "uploads" for p in stored)
    assert not any("evil" in p.name for p in stored)  # stored under the content hash


def test_the_api_key_is_required_everywhere_under_api_and_accepted_three_ways(
    tmp_path: Path, h264_video: SyntheticVideo
) -> None:
    client = make_client(tmp_path, api_key=KEY)
    info = client.get("/api/server").json()
    assert info["auth_required"] is True
    assert client.get("/").status_code == 200  # the page itself asks for the key
    bearer = {"Authorization": f"Bearer {KEY}"}
    video = upload(client, "a.mp4", h264_video.path.read_bytes(), headers=bearer).json()
    media = f"/api/videos/{video['id']}/media"
    for path in ("/api/videos", f"/api/videos/{video['id']}", media):
        refused = client.get(path)
        assert refused.status_code == 401 and "API key" in refused.json()["detail"]
        assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert upload(client, "b.mp4", b"x").status_code == 401
    assert client.get("/api/videos", headers=bearer).status_code == 200
    assert client.get("/api/videos", headers={"X-API-Key": KEY}).status_code == 200
    assert client.get(f"{media}?key={KEY}").status_code == 200


def test_media_honours_range_requests(tmp_path: Path, h264_video: SyntheticVideo) -> None:
    client = make_client(tmp_path)
    data = h264_video.path.read_bytes()
    video = upload(client, "a.mp4", data).json()
    whole = client.get(video["media_url"])
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["content-type"] == "video/mp4"
    assert whole.headers["accept-ranges"] == "bytes"
    part = client.get(video["media_url"], headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206 and part.content == data[100:1100]
    assert part.headers["content-range"] == f"bytes 100-1099/{len(data)}"
    tail = client.get(video["media_url"], headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == data[-10:]


def test_openapi_documents_every_route(tmp_path: Path) -> None:
    client = make_client(tmp_path)
    spec = client.get("/openapi.json").json()
    assert set(spec["paths"]) == {
        "/api/server",
        "/api/videos",
        "/api/videos/{video_id}",
        "/api/videos/{video_id}/media",
        "/api/videos/{video_id}/timeline",
        "/api/sessions",
        "/api/sessions/{session_id}",
        "/api/sessions/{session_id}/messages",
        "/api/sessions/{session_id}/reset",
    }
    upload_body = spec["paths"]["/api/videos"]["post"]["requestBody"]["content"]
    assert "file" in upload_body["multipart/form-data"]["schema"]["properties"]
    messages = spec["paths"]["/api/sessions/{session_id}/messages"]["post"]["responses"]
    assert "text/event-stream" in messages["200"]["content"]
    assert client.get("/docs").status_code == 200
    missing = client.get("/api/videos/nope")
    assert missing.status_code == 404 and missing.json() == {"detail": "no video 'nope'"}


def perceived_video(client: TestClient, data: bytes) -> str:
    video_id: str = upload(client, "a.mp4", data).json()["id"]
    assert client.post("/api/sessions", json={"video_id": video_id}).status_code == 409
    state = client.post(f"/api/videos/{video_id}/timeline").json()
    deadline = time.monotonic() + 30
    while state["status"] in ("pending", "running") and time.monotonic() < deadline:
        time.sleep(0.05)
        state = client.get(f"/api/videos/{video_id}/timeline").json()
    assert state["status"] == "done", state
    assert [s["token"] for s in state["segments"]] == ["<seg_0>", "<seg_1>", "<seg_2>", "<seg_3>"]
    assert state["segments"][1]["start"] == pytest.approx(2.0)
    assert state["segments"][1]["caption"] == "caption 1"
    client.post(f"/api/videos/{video_id}/timeline")  # asking again does not perceive again
    assert len(client.backend.perceived) == 1  # type: ignore[attr-defined]
    return video_id


def events(reply: Any) -> list[tuple[str, dict[str, Any]]]:
    assert reply.headers["content-type"].startswith("text/event-stream")
    out = []
    for block in reply.text.strip().split("\n\n"):
        name, data = block.split("\n")
        out.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return out


def test_a_chat_turn_streams_tool_calls_results_text_and_done(
    tmp_path: Path, h264_video: SyntheticVideo
) -> None:
    replies = [
        tool_call("describe_moment", {"time_s": 3.0, "window_s": 1.0}),
        text("At ", "<seg_1>."),
    ]
    client = make_client(
        tmp_path,
        replies=replies,
        max_rounds=1,
        tool_choice="required",
        tools=["describe_moment", "timeline_overview"],
    )
    video_id = perceived_video(client, h264_video.path.read_bytes())
    session = client.post("/api/sessions", json={"video_id": video_id}).json()
    reply = client.post(f"/api/sessions/{session['id']}/messages", json={"text": "What at 3 s?"})
    got = events(reply)
    assert [name for name, _ in got] == ["tool_call", "tool_result", "text", "text", "done"]
    assert got[0][1] == {
        "id": "call_1",
        "name": "describe_moment",
        "arguments": {"time_s": 3.0, "window_s": 1.0},
    }
    assert got[1][1]["error"] is False
    assert got[1][1]["content"] == "<seg_1> [2.0s-4.0s] caption 1"
    assert "".join(d["text"] for n, d in got if n == "text") == "At <seg_1>."
    assert got[-1][1] == {"chunks": 2, "turns": 1}
    model = client.backend.model  # type: ignore[attr-defined]
    assert model.bound == [(["describe_moment", "timeline_overview"], "required")]
    assert "What at 3 s?" in [m.content for m in model.sent[0]]
    assert model.sent[1][-1].content == got[1][1]["content"]  # the tool result went back


def test_a_failed_turn_is_an_error_event_and_the_session_goes_on(
    tmp_path: Path, h264_video: SyntheticVideo
) -> None:
    replies = [RuntimeError("Connection error: LLM server down"), text("Fine", " now.")]
    client = make_client(tmp_path, replies=replies, max_rounds=0)
    video_id = perceived_video(client, h264_video.path.read_bytes())
    sid = client.post("/api/sessions", json={"video_id": video_id}).json()["id"]
    failed = events(client.post(f"/api/sessions/{sid}/messages", json={"text": "Hi?"}))
    assert failed == [("error", {"detail": "Connection error: LLM server down"})]
    ok = events(client.post(f"/api/sessions/{sid}/messages", json={"text": "Again?"}))
    assert [n for n, _ in ok] == ["text", "text", "done"]
    model = client.backend.model  # type: ignore[attr-defined]
    assert [m.content for m in model.sent[1][1:]] == ["Again?"]  # the failed turn left no trace
    assert client.post(f"/api/sessions/{sid}/reset").status_code == 204
    assert client.get(f"/api/sessions/{sid}").json()["turns"] == 0
    empty = client.post(f"/api/sessions/{sid}/messages", json={"text": ""})
    assert empty.status_code == 422
    assert client.post("/api/sessions/nope/messages", json={"text": "x"}).status_code == 404


def test_a_videos_folder_is_offered_read_only_and_a_failed_perception_can_be_retried(
    tmp_path: Path, h264_video: SyntheticVideo
) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    (folder / "clip.mp4").write_bytes(h264_video.path.read_bytes())
    (folder / "readme.txt").write_text("not listed")
    client = make_client(tmp_path, videos_dir=folder)
    (video,) = client.get("/api/videos").json()
    assert (video["name"], video["source"]) == ("clip.mp4", "folder")
    assert client.get(video["media_url"]).content == h264_video.path.read_bytes()
    backend = client.backend  # type: ignore[attr-defined]
    real = backend.perceive
    backend.perceive = lambda path, progress=None: (_ for _ in ()).throw(
        RuntimeError("captioner crashed")
    )
    state = client.post(f"/api/videos/{video['id']}/timeline").json()
    while state["status"] in ("pending", "running"):
        time.sleep(0.02)
        state = client.get(f"/api/videos/{video['id']}/timeline").json()
    assert state == {**state, "status": "error", "error": "captioner crashed", "segments": []}
    backend.perceive = real
    client.post(f"/api/videos/{video['id']}/timeline")
    deadline = time.monotonic() + 30
    while state["status"] != "done" and time.monotonic() < deadline:
        time.sleep(0.02)
        state = client.get(f"/api/videos/{video['id']}/timeline").json()
    assert len(state["segments"]) == 4 and sorted(p.name for p in folder.iterdir()) == [
        "clip.mp4",
        "readme.txt",
    ]


def serve_cli(args: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[Any, dict[str, Any]]:
    import typer
    import uvicorn
    from typer.testing import CliRunner

    from vidagent.cli.serve import serve

    ran: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: ran.update(app=app, **kw))
    app = typer.Typer()
    app.command("serve")(serve)
    app.command("other")(lambda: None)
    return CliRunner().invoke(app, ["serve", *args]), ran


def test_serve_cli_checks_its_options_and_warns_about_an_open_host_without_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vidagent.core.errors import ConfigError

    monkeypatch.delenv("VIDAGENT_API_KEY", raising=False)
    result, ran = serve_cli([], monkeypatch)
    assert isinstance(result.exception, ConfigError) and "needs --llm-url" in str(result.exception)
    base = ["--llm-url", "http://127.0.0.1:9/v1", "--data-dir", str(tmp_path / "d")]
    result, _ = serve_cli([*base, "--tools", "timeline_overview,rm"], monkeypatch)
    assert isinstance(result.exception, ConfigError) and "unknown tool 'rm'" in str(
        result.exception
    )
    result, ran = serve_cli(base, monkeypatch)
    assert result.exit_code == 0 and (ran["host"], ran["port"]) == ("127.0.0.1", 8000)
    assert "warning: listening" not in result.output
    # the LLM server is checked at start: down is a warning (one line), not a crash
    assert "warning: LLM server at http://127.0.0.1:9/v1" in " ".join(result.output.split())
    result, ran = serve_cli([*base, "--host", "0.0.0.0", "--port", "8123"], monkeypatch)
    assert "warning: listening on 0.0.0.0 without an API key" in result.output
    assert (
        TestClient(ran["app"], base_url=LOCAL).get("/api/server").json()["auth_required"] is False
    )
    monkeypatch.setenv("VIDAGENT_API_KEY", KEY)
    result, ran = serve_cli([*base, "--host", "0.0.0.0"], monkeypatch)
    assert "warning: listening" not in result.output
    client = TestClient(ran["app"], base_url=LOCAL)
    assert client.get("/api/server").json()["auth_required"] is True
    assert client.get("/api/videos").status_code == 401
    assert client.get("/api/videos", headers={"X-API-Key": KEY}).json() == []


def test_one_turn_at_a_time_per_session(tmp_path: Path, h264_video: SyntheticVideo) -> None:
    import threading

    started, release = threading.Event(), threading.Event()

    def slow() -> Iterator[AIMessageChunk]:
        started.set()
        release.wait(10)
        yield AIMessageChunk(content="done")

    client = make_client(tmp_path, replies=[slow(), text("second")], max_rounds=0)
    video_id = perceived_video(client, h264_video.path.read_bytes())
    sid = client.post("/api/sessions", json={"video_id": video_id}).json()["id"]
    first: list[Any] = []
    worker = threading.Thread(
        target=lambda: first.append(
            client.post(f"/api/sessions/{sid}/messages", json={"text": "One?"})
        )
    )
    worker.start()
    assert started.wait(10)
    busy = client.post(f"/api/sessions/{sid}/messages", json={"text": "Two?"})
    assert busy.status_code == 409 and "still answering" in busy.json()["detail"]
    release.set()
    worker.join(10)
    assert [n for n, _ in events(first[0])] == ["text", "done"]
    after = events(client.post(f"/api/sessions/{sid}/messages", json={"text": "Three?"}))
    assert after == [("text", {"text": "second"}), ("done", {"chunks": 1, "turns": 2})]
