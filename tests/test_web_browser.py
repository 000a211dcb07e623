"""``vidagent serve`` end to end in a real headless Chromium (Debian's, driven by Playwright).

The server runs as a subprocess with tiny random perception models and the real vLLM test server
(tool calling on, ``--tool-choice required`` so the first round calls a tool) behind a proxy that
paces its streamed events as a real model's tokens are, and an API key. The
test gives the key when the page asks, uploads a non-video (error shown) and a video through the
page, waits for the timeline, asks a question, checks the answer streams in and finishes, clicks a
timestamp link and checks the player seeked there, and saves a screenshot
(``$VIDAGENT_TEST_ARTIFACTS``, default ``test-artifacts/``). Without Chromium or the vLLM venv it is
skipped locally and fails under ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from llm_support import REPO, tiny_model_dir, unavailable, vllm_url

from vidagent.testing.synth import SyntheticVideo

__all__ = ["tiny_model_dir", "vllm_url"]

CHROMIUM = os.environ.get("VIDAGENT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

KEY = "browser-test-key"

pytestmark = [pytest.mark.slow, pytest.mark.vllm]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def artifacts_dir() -> Path:
    path = Path(os.environ.get("VIDAGENT_TEST_ARTIFACTS") or REPO / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def chromium() -> str:
    """Chromium's path, checked before the server starts."""
    if shutil.which(CHROMIUM) is None:
        unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium, or VIDAGENT_CHROMIUM)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        unavailable("playwright is not installed (pip install -e '.[dev]')")
    return CHROMIUM


PACE_S = 0.05
"""Delay between two streamed events of the paced LLM server (a real 7B model takes ~20-50 ms per
token; the tiny test model has its short answer ready at once, so it would arrive in one read)."""


@pytest.fixture
def paced_llm(vllm_url: str) -> Iterator[str]:
    """A proxy to the vLLM test server that sends each streamed event ``PACE_S`` apart."""
    import asyncio
    import threading

    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response, StreamingResponse
    from starlette.routing import Route

    upstream = vllm_url.rstrip("/")
    if upstream.endswith("/v1"):
        upstream = upstream[: -len("/v1")]

    async def forward(request: Request) -> Response:
        client = httpx.AsyncClient(base_url=upstream, timeout=120)
        sent = client.build_request(
            request.method,
            request.url.path,
            params=request.query_params,
            content=await request.body(),
            headers={"content-type": request.headers.get("content-type", "application/json")},
        )
        reply = await client.send(sent, stream=True)
        if not reply.headers.get("content-type", "").startswith("text/event-stream"):
            body = await reply.aread()
            await client.aclose()
            kind = reply.headers.get("content-type")
            return Response(body, status_code=reply.status_code, media_type=kind)

        async def events() -> AsyncIterator[bytes]:
            try:
                async for line in reply.aiter_lines():
                    if line:
                        yield f"{line}\n\n".encode()
                        await asyncio.sleep(PACE_S)
            finally:
                await reply.aclose()
                await client.aclose()

        return StreamingResponse(events(), media_type="text/event-stream")

    app = Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "POST"])])
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    proxy = uvicorn.Server(config)
    thread = threading.Thread(target=proxy.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not proxy.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/v1"
    proxy.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def server(paced_llm: str, tmp_path: Path) -> Iterator[str]:
    """``vidagent serve`` on a free port; yields its base URL, stops it afterwards."""
    from vidagent.testing.tiny_models import build_tiny

    models = {k: str(build_tiny(k, tmp_path / "models")) for k in ("clip", "blip")}
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    command = [
        sys.executable,
        "-m",
        "vidagent.cli.main",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(tmp_path / "data"),
        "--llm-url",
        paced_llm,
        "--captioner",
        models["blip"],
        "--embedder",
        models["clip"],
        "--device",
        "cpu",
        "--tool-choice",
        "required",
        "--max-rounds",
        "1",
        "--tools",
        "timeline_overview",  # the forced call is then always valid: it takes no arguments
        "--max-tokens",
        "48",
        "--max-timeline-chars",
        "600",
        "--api-key",
        KEY,
    ]
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vidagent serve exited: {(tmp_path / 'serve.log').read_text()}")
            try:
                if httpx.get(f"{url}/api/server", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("vidagent serve did not answer within 60 s")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        print(f"server log: {tmp_path / 'serve.log'}")
    output = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in output, output  # nor at shutdown


def test_upload_timeline_streamed_answer_and_a_timestamp_that_seeks(
    chromium: str, server: str, h264_video: SyntheticVideo, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        prompts: list[str] = []
        page.on("dialog", lambda d: (prompts.append(d.message), d.accept(KEY)))
        try:
            page.goto(server)
            page.wait_for_function("() => localStorage.getItem('vidagent.apiKey') !== null")
            assert prompts == ["This server needs an API key:"]
            notes = tmp_path / "notes.mp4"
            notes.write_text("not a video\n" * 50)
            page.set_input_files("#upload-input", str(notes))
            page.wait_for_selector("#upload-error:not([hidden])")
            shown = page.text_content("#upload-error") or ""
            assert shown.startswith("notes.mp4: not a usable video: "), shown
            page.set_input_files("#upload-input", str(h264_video.path))
            page.wait_for_selector("#timeline li.segment >> nth=3", timeout=60_000)
            assert page.is_hidden("#upload-error")
            tokens = page.locator("#timeline .token").all_text_contents()
            assert tokens == ["<seg_0>", "<seg_1>", "<seg_2>", "<seg_3>"]
            video_id = page.locator("#video-select").input_value()
            state = httpx.get(
                f"{server}/api/videos/{video_id}/timeline", headers={"X-API-Key": KEY}
            ).json()  # the real perception reported its steps (4 segments x 3 tools)
            assert state["status"] == "done" and state["steps_done"] == state["steps_total"] == 12
            page.wait_for_function("() => document.querySelector('video').readyState >= 1")
            # The media URL carries the key (?key=): the player could load it.
            assert page.evaluate("document.querySelector('video').duration") > 7.9

            # Record the answer's length at every DOM change: streamed text grows in steps.
            page.evaluate(
                """() => {
                  window.lengths = [];
                  new MutationObserver(() => {
                    const a = document.querySelectorAll('.msg.assistant');
                    if (a.length) window.lengths.push(a[a.length - 1].textContent.length);
                  }).observe(document.getElementById('messages'),
                             {childList: true, subtree: true, characterData: true});
                }"""
            )
            page.fill("#question", "What happens at 00:05?")
            page.press("#question", "Enter")
            page.wait_for_selector('.msg.assistant[data-done="true"]', timeout=60_000)
            assert not page.locator(".msg.error").count(), page.locator(
                ".msg.error"
            ).all_text_contents()
            assert page.locator(".tool .name").count() >= 1  # the forced tool call is shown
            chunks = int(page.get_attribute(".msg.assistant >> nth=-1", "data-chunks") or 0)
            lengths = page.evaluate("window.lengths")
            assert chunks > 1 and len(set(lengths)) > 1 and lengths == sorted(lengths)

            # Timestamps in the tool result (and the answer, the question) are links.
            links = page.locator(".tool .result a.ts")
            times = [float(t) for t in links.evaluate_all("els => els.map(e => e.dataset.t)")]
            assert page.locator(".msg.user a.ts").text_content() == "00:05"
            target = next(i for i, t in enumerate(times) if 0.5 < t < 7.5)
            before = page.evaluate("document.querySelector('video').currentTime")
            links.nth(target).click()
            page.wait_for_function(
                "t => Math.abs(document.querySelector('video').currentTime - t) < 0.05",
                arg=times[target],
            )
            after = page.evaluate("document.querySelector('video').currentTime")
            assert after != before and after == pytest.approx(times[target], abs=0.05)
            page.wait_for_function("() => !document.querySelector('video').seeking")

            shot = artifacts_dir() / "web-chat.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot: {shot}")
            assert shot.stat().st_size > 10_000 and errors == []
        finally:
            browser.close()
