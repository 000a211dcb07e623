"""The CLI's options, walked through typer/click introspection of the real ``vidagent`` command
tree: every option has help and a readable metavar, a shared flag reads the same in every command
(declared once in vidagent.cli.options), one name has one meaning; plus the shared groups' checks
and the one-line errors they raise."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from vidagent.api import LLMSettings, PerceptionConfig
from vidagent.cli import options as shared
from vidagent.cli.help import metavar_of, walk_commands
from vidagent.cli.main import build_command
from vidagent.core.errors import ConfigError
from vidagent.testing.synth import SyntheticVideo

ROOT = build_command()
LEAVES = {
    " ".join(path): cmd for path, cmd in walk_commands(ROOT) if not getattr(cmd, "commands", None)
}
OTHERS = ("eval", "index", "train")
"""Command groups (cli/eval.py, cli/index.py, cli/train*.py) whose flags name their own inputs
(annotation files, the embedder a head reads, training segment lengths): they are held to the help
and metavar rules, not (yet) to the shared help text of the task commands."""
PER_COMMAND = {"--out", "-o"}
"""Where the command writes: the same meaning everywhere, the help says what it writes."""
TYPE_TAG = re.compile(r"<(?:bool|str|text|int|integer|float|path|file|list\[[^>]*\]|\w+ range)>")


def visible(cmd: Any) -> list[Any]:
    ctx = typer.Context(cmd)
    params = [*cmd.params, cmd.get_help_option(ctx)]
    return [p for p in params if p is not None and not getattr(p, "hidden", False)]


def flags(param: Any) -> list[str]:
    return [o for o in (*param.opts, *getattr(param, "secondary_opts", ())) if o.startswith("-")]


def rendered_help(path: str) -> str:
    cmd = LEAVES[path]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        cmd.get_help(typer.Context(cmd, info_name=path.split()[-1]))
    return buf.getvalue()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vidagent.cli.main", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=120,
    )


def test_the_walk_sees_every_command() -> None:
    expected = {"info", "segments", "frames", "demo-video", "perceive", "ask", "anticipate"}
    expected |= {"localize", "demo", "chat", "serve", "llm check", "eval run", "index build"}
    assert expected <= set(LEAVES)


@pytest.mark.parametrize("path", sorted(LEAVES))
def test_every_option_has_help_and_a_readable_metavar(path: str) -> None:
    cmd = LEAVES[path]
    ctx = typer.Context(cmd)
    for param in visible(cmd):
        name = "/".join(flags(param)) or param.name
        assert (param.help or "").strip(), f"vidagent {path} {name}: no help line"
        shown = metavar_of(param, ctx)
        assert not TYPE_TAG.search(shown) and "[" not in shown, f"{path} {name}: {shown!r}"
        is_flag = getattr(param, "is_flag", False)
        assert (shown == "") == bool(is_flag), f"{path} {name}: flag {is_flag}, metavar {shown!r}"
    text = rendered_help(path)
    assert not TYPE_TAG.search(text), f"vidagent {path} --help: {TYPE_TAG.search(text)}"


def test_a_shared_flag_has_the_same_help_in_every_command() -> None:
    helps: dict[str, dict[str, str]] = defaultdict(dict)
    for path, cmd in LEAVES.items():
        if path.split()[0] in OTHERS:
            continue
        for param in visible(cmd):
            for flag in flags(param):
                if flag not in PER_COMMAND and flag not in ("-h", "--help"):
                    helps[flag][path] = param.help
    shared_by_many = {f: by_cmd for f, by_cmd in helps.items() if len(by_cmd) > 1}
    assert {"--llm-url", "--bank", "--examples", "--captioner", "--seconds"} <= set(shared_by_many)
    for flag, by_command in shared_by_many.items():
        assert len(set(by_command.values())) == 1, f"{flag}: {by_command}"


def test_the_flags_declared_once_are_the_ones_the_commands_show() -> None:
    declared = {
        opt.name: opt.annotation.__metadata__[0].help
        for group in (shared.PERCEPTION, shared.LLM, shared.EXAMPLES, shared.CHAT)
        for opt in group.options
    }
    ask = {p.name: p.help for p in LEAVES["ask"].params}
    for name in ("llm_url", "llm_model", "bank", "examples", "prompt", "captioner", "seconds"):
        assert ask[name] == declared[name]


def test_one_name_one_meaning() -> None:
    for path, cmd in LEAVES.items():
        for param in visible(cmd):
            names = flags(param)
            if "-o" in names:
                assert "--out" in names, f"{path}: -o means {names}"
            if path in ("ask", "anticipate", "localize", "chat", "serve"):
                assert "--k" not in names, f"{path} still has --k"
    examples = {p.name for p in LEAVES["ask"].params}
    assert {"examples", "option"} <= examples
    anticipate = {f for p in LEAVES["anticipate"].params for f in flags(p)}
    assert {"--candidates", "-K", "--examples"} <= anticipate
    llm_check = {f for p in visible(LEAVES["llm check"]) for f in flags(p)}
    assert "--llm-url" in llm_check and "--url" not in llm_check  # --url: a hidden alias


def test_ask_has_no_short_o_any_more(tmp_path: Path) -> None:
    res = run_cli("ask", str(tmp_path / "v.mp4"), "q?", "-o", "onion")
    assert res.returncode == 2 and "-o" in res.stderr


def test_examples_without_a_bank_is_one_clear_error(h264_video: SyntheticVideo) -> None:
    for command in (["ask", str(h264_video.path), "what?"], ["chat", str(h264_video.path)]):
        res = run_cli(*command, "--examples", "2")
        assert res.returncode == 2, res.stderr
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: --examples needs --bank"), lines
    res = run_cli("localize", str(h264_video.path), "x", "--examples", "0")  # 0 is fine
    assert "--examples needs --bank" not in res.stderr


def test_llm_check_takes_llm_url_and_still_the_old_url() -> None:
    from vidagent.cli.llm import app
    from vidagent.testing.vllm_server import free_port

    url = f"http://127.0.0.1:{free_port()}"
    for flag in ("--llm-url", "--url"):
        result = CliRunner().invoke(app, ["check", flag, url, "--timeout", "2"])
        assert result.exit_code == 1
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and f"{url}/v1" in lines[0]


def test_with_options_hands_the_command_typed_configs(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    @shared.with_options(shared.LLM, shared.EXAMPLES, shared.PERCEPTION)
    def probe(
        *,
        llm: LLMSettings,
        examples: shared.Examples,
        perception: PerceptionConfig,
    ) -> None:
        seen.update(llm=llm, examples=examples, perception=perception)

    app = typer.Typer()
    app.command("probe")(probe)
    app.command("other")(lambda: None)
    bank = tmp_path / "bank"
    bank.mkdir()
    args = ["probe", "--llm-url", "http://a/v1", "--llm-url", "http://b/v1", "--bank", str(bank)]
    args += ["--examples", "2", "--seconds", "3", "--device", "cpu", "--taxonomy", "t.json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert seen["llm"] == LLMSettings(urls=["http://a/v1", "http://b/v1"])
    assert seen["examples"] == shared.Examples(bank, 2, None)
    assert seen["perception"] == PerceptionConfig(seconds=3, device="cpu", taxonomy=Path("t.json"))
    missing = CliRunner().invoke(app, ["probe", "--bank", str(tmp_path / "nope")])
    assert isinstance(missing.exception, ConfigError) and "not a directory" in str(
        missing.exception
    )


def test_the_library_never_imports_the_cli() -> None:
    code = (
        "import sys, vidagent.api, vidagent.api.demo, vidagent.web, vidagent.web.backend, "
        "vidagent.web.sessions, vidagent.web.library, vidagent.tools.video_files;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('typer', 'rich', 'click') "
        "or m.startswith('vidagent.cli')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"
