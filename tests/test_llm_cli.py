"""``vidagent llm check`` through typer's CliRunner, and the tiny-model builder's CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from llm_support import tiny_model_dir, vllm_url  # noqa: F401
from typer.testing import CliRunner

from vidagent.cli.llm import app
from vidagent.testing.tiny_llm import build_tiny_llama, main
from vidagent.testing.vllm_server import free_port
from vidagent.testing.vllm_server import main as server_main


@pytest.mark.vllm
def test_check_against_the_real_server_passes(vllm_url: str) -> None:  # noqa: F811
    result = CliRunner().invoke(app, ["check", "--url", vllm_url, "--timeout", "60"])
    assert result.exit_code == 0, result.output
    assert "tiny" in result.output
    for row in ("reachable", "choice constrained", "JSON schema constrained"):
        line = next(line for line in result.output.splitlines() if row in line)
        assert "yes" in line, line


@pytest.mark.vllm
def test_check_with_a_model_the_server_does_not_serve_fails(vllm_url: str) -> None:  # noqa: F811
    result = CliRunner().invoke(app, ["check", "--url", vllm_url, "--model", "no-such-model"])
    assert result.exit_code == 1
    assert "no-such-model" in result.output and "Traceback" not in result.output


def test_check_against_a_dead_port_is_one_line_and_exit_1() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(app, ["check", "--url", url, "--timeout", "2"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and f"{url}/v1" in lines[0]
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_tiny_model_build_is_deterministic(tiny_model_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    again = build_tiny_llama(tmp_path / "again")
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (again / name).read_bytes() == (tiny_model_dir / name).read_bytes(), name


def test_tiny_chat_template_renders_hermes_tool_calls(tiny_model_dir: Path) -> None:  # noqa: F811
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    call = {"type": "function", "function": {"name": "find", "arguments": {"q": "cup"}}}
    text = tokenizer.apply_chat_template(
        [
            {"role": "user", "content": "find the cup"},
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "content": "seg 3"},
        ],
        tools=[{"type": "function", "function": {"name": "find", "parameters": {}}}],
        add_generation_prompt=True,
        tokenize=False,
    )
    assert '<tool_call>{"name": "find", "arguments": {"q": "cup"}}</tool_call>' in text
    assert text.endswith("<|assistant|>\n") and '"name": "find"' in text.split("</tools>")[0]
    ids = tokenizer.encode("<tool_call></tool_call>", add_special_tokens=False)
    assert len(ids) == 2, "the tool-call markers are single special tokens (hermes parser)"


def test_tiny_main_needs_exactly_one_folder() -> None:
    assert main([]) == 2


def test_server_main_without_the_vllm_venv_is_one_error_line(
    tiny_model_dir: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing = tmp_path / "no-venv" / "bin" / "python"
    assert server_main(["--python", str(missing), "--model", str(tiny_model_dir)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(missing) in err[0]
