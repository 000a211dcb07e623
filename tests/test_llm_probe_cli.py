"""A bad LLM server fails a command in seconds, in one line naming it, before any model loads."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from llm_support import tiny_model_dir, vllm_url

from vidagent.testing.synth import SyntheticVideo

__all__ = ["tiny_model_dir", "vllm_url"]


@pytest.fixture
def silent_url() -> Iterator[str]:
    """Accepts TCP connections and never answers: a hung server, or another program's port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    sock.close()


def ask(video: Path, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vidagent.cli", "ask", str(video), "What happens?",
         "--option", "a", "--option", "b", *args],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "VIDAGENT_HOME": str(home)},
    )  # fmt: skip


def test_a_silent_server_fails_ask_in_one_line(
    h264_video: SyntheticVideo, silent_url: str, tmp_path: Path
) -> None:
    res = ask(h264_video.path, "--llm-url", silent_url, home=tmp_path)
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert silent_url in lines[0] and "did not answer GET /v1/models" in lines[0]


@pytest.mark.vllm
def test_a_model_the_server_does_not_serve_fails_at_once(
    h264_video: SyntheticVideo, vllm_url: str, tmp_path: Path
) -> None:
    res = ask(h264_video.path, "--llm-url", vllm_url, "--llm-model", "no-such-model", home=tmp_path)
    assert res.returncode != 0
    assert res.stderr.strip().count("\n") == 0, res.stderr
    assert "does not serve model 'no-such-model'" in res.stderr and "'tiny'" in res.stderr
