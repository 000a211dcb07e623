"""Start and stop a local vLLM OpenAI-compatible server as a subprocess (tests, bench, CI).

The server runs from its own venv (its pins must not constrain the project; see
``shared/notes/vllm-cpu.md``), in its own process group so that stopping it also stops the engine
core process it spawns. Its output goes to a log file; if it dies or does not answer ``/health``
in time, :class:`ServerStartError` carries the tail of that log.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx
from pydantic import BaseModel, ConfigDict

from vidagent.llm.errors import ServerStartError

SERVED_MODEL_NAME = "tiny"
PYTHON_ENV = "VIDAGENT_VLLM_PYTHON"
"""Names the interpreter of the venv that has vLLM (tests/run.sh sets it to ``.venv-vllm``)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host`` (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def server_command(
    python: Path,
    model_dir: Path,
    *,
    host: str,
    port: int,
    served_model_name: str,
    lora_modules: Mapping[str, Path] | None = None,
) -> list[str]:
    """The command line of the server, with the flags that make it work on a small CPU.

    ``lora_modules`` (served name -> PEFT LoRA folder) adds ``--enable-lora --lora-modules
    NAME=DIR ... --max-lora-rank R`` (R: the smallest vLLM accepts for the largest rank given);
    ``/v1/models`` then lists each NAME (its ``parent`` the base) and a request for NAME runs
    through that adapter.

    Structured outputs use the ``guidance`` backend (xgrammar's JSON may contain raw control
    characters that strict ``json.loads`` rejects) with ``disable_any_whitespace``: otherwise the
    random tiny model pads JSON with whitespace until ``max_tokens`` and the JSON never closes.
    """
    return [
        str(python),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--served-model-name",
        served_model_name,
        "--host",
        host,
        "--port",
        str(port),
        "--dtype",
        "float32",
        "--max-model-len",
        str(context_length(model_dir)),
        "--max-num-seqs",
        "32",
        "--enforce-eager",
        "--kv-cache-memory-bytes",
        str(256 * 1024 * 1024),
        "--structured-outputs-config",
        json.dumps({"backend": "guidance", "disable_any_whitespace": True}),
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        "hermes",
        *lora_flags(lora_modules or {}),
    ]


def lora_flags(lora_modules: Mapping[str, Path]) -> list[str]:
    """``--enable-lora --lora-modules NAME=DIR ... --max-lora-rank R`` ([] for none)."""
    if not lora_modules:
        return []
    from vidagent.llm.adapter import lora_rank, vllm_max_lora_rank

    rank = vllm_max_lora_rank(max(lora_rank(path) for path in lora_modules.values()))
    modules = [f"{name}={Path(path).resolve()}" for name, path in lora_modules.items()]
    return ["--enable-lora", "--lora-modules", *modules, "--max-lora-rank", str(rank)]


def context_length(model_dir: Path, cap: int = 4096) -> int:
    """The model's ``max_position_embeddings`` (from its config.json), at most ``cap``."""
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text())
        return min(int(config.get("max_position_embeddings", 512)), cap)
    except (OSError, ValueError):
        return 512


class VLLMServer(BaseModel):
    """A running server started by :func:`start_vllm_server`; ``stop()`` ends its process group."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    url: str
    port: int
    pid: int
    log_path: Path
    process: subprocess.Popen[bytes]

    def alive(self) -> bool:
        """True while the server process has not exited."""
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole group at once: a server crash, as tests need to simulate."""
        _signal_group(self.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM the process group; SIGKILL it if it is still there after ``grace_s``."""
        _signal_group(self.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            _signal_group(self.pid, signal.SIGKILL)
            self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the server log."""
        return tail(self.log_path, lines)

    def __enter__(self) -> VLLMServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_vllm_server(
    python: str | Path,
    model_dir: str | Path,
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    served_model_name: str = SERVED_MODEL_NAME,
    log_path: str | Path | None = None,
    startup_timeout_s: float = 240.0,
    lora_modules: Mapping[str, Path] | None = None,
) -> VLLMServer:
    """Start ``python -m vllm.entrypoints.openai.api_server`` and wait until ``/health`` is 200.

    ``python`` is the interpreter of the venv that has ``vllm-cpu`` installed. Raises
    :class:`ServerStartError` (with the log tail) if the process exits or the timeout passes; the
    process group is stopped in both cases. ``lora_modules``: adapters to serve beside the base
    (:func:`server_command`).
    """
    python, model_dir = Path(python), Path(model_dir)
    if not python.exists():
        raise ServerStartError(f"no Python interpreter at {python} (the vLLM venv)")
    port = port or free_port(host)
    log = Path(log_path) if log_path else model_dir.parent / f"vllm-server-{port}.log"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "VLLM_ENFORCE_STRICT_TOOL_CALLING": "0",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
    }
    cmd = server_command(
        python,
        model_dir,
        host=host,
        port=port,
        served_model_name=served_model_name,
        lora_modules=lora_modules,
    )
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    server = VLLMServer(
        url=f"http://{host}:{port}", port=port, pid=process.pid, log_path=log, process=process
    )
    try:
        wait_healthy(server, startup_timeout_s)
    except BaseException:
        server.stop(grace_s=5.0)
        raise
    return server


def wait_healthy(server: VLLMServer, timeout_s: float) -> None:
    """Poll ``GET /health`` until it answers 200; fail early if the process exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not server.alive():
            raise ServerStartError(
                f"vLLM server on port {server.port} exited with code {server.process.returncode} "
                f"during start-up; log {server.log_path}:\n{server.log_tail()}"
            )
        try:
            if httpx.get(f"{server.url}/health", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise ServerStartError(
        f"vLLM server on port {server.port} not healthy after {timeout_s:g} s; "
        f"log {server.log_path}:\n{server.log_tail()}"
    )


def tail(path: Path, lines: int) -> str:
    """Last ``lines`` lines of a text file ('' if it does not exist)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def main(argv: list[str] | None = None) -> int:
    """``python -m vidagent.testing.vllm_server``: serve the tiny Llama (or ``--model``) until
    Ctrl-C.

    For running the vLLM tests against one long-lived server:
    ``VIDAGENT_TEST_VLLM_URL=<printed URL> pytest -m vllm``.
    """
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(
        prog="python -m vidagent.testing.vllm_server", description=main.__doc__
    )
    parser.add_argument(
        "--python",
        default=os.environ.get(PYTHON_ENV),
        help=f"the Python of a venv with vLLM installed (default: ${PYTHON_ENV})",
    )
    parser.add_argument("--model", help="model folder (default: build the tiny random Llama)")
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    if not args.python:
        parser.error(
            f"give --python (a venv with vLLM: .venv-vllm/bin/python) or set ${PYTHON_ENV}"
        )
    with tempfile.TemporaryDirectory(prefix="vidagent-vllm-") as tmp:
        if args.model:
            model_dir = Path(args.model)
        else:
            from vidagent.testing.tiny_llm import build_tiny_llama

            model_dir = build_tiny_llama(Path(tmp) / "tiny")
        try:
            server = start_vllm_server(
                args.python, model_dir, port=args.port, log_path=Path(tmp) / "server.log"
            )
        except ServerStartError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        print(server.url, flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `kill` stops the server too
        try:
            server.process.wait()
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
