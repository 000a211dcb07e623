"""The web page never runs model text as HTML: a caption and a streamed answer that carry markup and
an event handler are shown as text in a real headless Chromium, and the timestamps in them still
become links. The app runs in process with the scripted model and fake perception of the API
tests (no vLLM), served by uvicorn on a free port."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_web_api import FakeBackend, text
from test_web_browser import CHROMIUM_ARGS, chromium, free_port

from vidagent.api.deps import Deps
from vidagent.testing.synth import SyntheticVideo
from vidagent.web import ServeConfig, create_app

__all__ = ["chromium"]

pytestmark = pytest.mark.slow

ATTACK = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'


class HostileBackend(FakeBackend):
    """Captions that carry markup (a VLM can write anything)."""

    def perceive(self, path: Path, progress: Any = None) -> Deps:
        deps = super().perceive(path, progress)
        for segment in deps.timeline.segments:
            segment.captions[0].text = f"{ATTACK} caption {segment.index}"
        return deps


@pytest.fixture
def app_url(tmp_path: Path) -> Iterator[str]:
    import uvicorn

    replies = [text(ATTACK, " see <seg_1> and ", "00:05", " <b>not bold</b>")]
    backend = HostileBackend(tmp_path / "store", replies)
    app = create_app(ServeConfig(data_dir=tmp_path / "data", max_rounds=0), backend=backend)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_markup_in_captions_and_answers_is_shown_as_text(
    chromium: str, app_url: str, h264_video: SyntheticVideo
) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(app_url)
            page.set_input_files("#upload-input", str(h264_video.path))
            page.wait_for_selector("#timeline li.segment >> nth=3", timeout=30_000)
            page.fill("#question", "What happens?")
            page.press("#question", "Enter")
            page.wait_for_selector('.msg.assistant[data-done="true"]', timeout=30_000)

            assert page.evaluate("window.pwned") is None
            assert page.locator("#timeline img, #timeline script, #messages img").count() == 0
            assert page.locator("#messages b, #messages script").count() == 0
            answer = page.locator(".msg.assistant >> nth=-1")
            assert (answer.text_content() or "").startswith(ATTACK)
            assert ATTACK in (page.locator("#timeline li.segment >> nth=0").text_content() or "")
            links = answer.locator("a.ts").all_text_contents()
            assert links == ["<seg_1>", "00:05"]  # timestamps are still links
            assert errors == []
        finally:
            browser.close()
