"""``vidagent eval run`` when things go wrong, against a scripted OpenAI-compatible server (answer,
stall, 503) or a socket that never answers: a silent server fails in seconds naming its URL;
samples that could not reach the LLM fail the run and a plain re-run retries them; a retried
sample leaves one line per key; a second run on the same folder is refused naming the first's
PID; Ctrl-C while the server stalls exits at once with what was saved and the command that
resumes; damaged results lines and a damaged config.json are named, not internal errors; an
unusable ``--out`` is one line; the progress bar says what it waits for."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eval_support import Scripted, nextqa_slice, scripted_server, silent_socket
from typer.testing import CliRunner

from vidagent.cli import progress
from vidagent.cli.eval import app
from vidagent.core.errors import VidagentError
from vidagent.evals import EvalError
from vidagent.evals.results import DAMAGED, RESULTS

__all__ = ["scripted_server", "silent_socket"]

REPO = Path(__file__).resolve().parents[1]


def lines(out: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (out / RESULTS).read_text().splitlines()]


def run_args(tmp_path: Path, url: str, *extra: str) -> tuple[list[str], Path, list[str]]:
    ann, cap, keys = nextqa_slice(tmp_path)
    out = tmp_path / "run"
    args = ["run", "nextqa", "--annotations", str(ann), "--captions", str(cap), "--out",
            str(out), "--llm-url", url, "--no-cache", "--no-progress", *extra]  # fmt: skip
    return args, out, keys


def vidagent(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "vidagent.cli", *args], cwd=REPO, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def test_a_silent_server_fails_in_seconds_naming_its_url(
    silent_socket: str, tmp_path: Path
) -> None:
    args, out, _ = run_args(tmp_path, silent_socket, "--timeout", "120")
    start = time.monotonic()
    proc = vidagent("eval", *args)
    try:
        _, err = proc.communicate(timeout=60)  # before: silent for 4 x 120 s
    finally:
        proc.kill()
    assert time.monotonic() - start < 60
    assert proc.returncode == 2, err
    assert err.strip().count("\n") == 0 and err.startswith("error: ")
    assert silent_socket in err and "did not answer GET /v1/models" in err
    assert not (out / RESULTS).exists() or not lines(out)  # nothing was sent or recorded


def test_samples_that_could_not_reach_the_llm_fail_the_run_and_a_rerun_retries_them(
    scripted_server: Scripted, tmp_path: Path
) -> None:
    args, out, keys = run_args(tmp_path, scripted_server.url, "--max-retries", "0")
    scripted_server.mode = "fail"  # the server answers /v1/models, then 503 to every request
    failed = CliRunner().invoke(app, args)
    assert isinstance(failed.exception, EvalError), failed.output  # before: exit 0, "Acc 0.0"
    assert "3 of 3 samples could not reach the LLM" in str(failed.exception)
    assert "HTTP 503" in str(failed.exception) and "retries them" in str(failed.exception)
    assert all(r["error_kind"] == "transport" for r in lines(out))
    assert json.loads((out / "summary.json").read_text())["transport_failed"] == 3
    scripted_server.mode = "answer"  # the server is back: a plain re-run retries them
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, (again.output, again.exception)
    records = lines(out)
    assert sorted(r["key"] for r in records) == sorted(keys) and all(r["ok"] for r in records)
    assert "3 run in" in again.stdout and "samples/s" in again.stdout


def test_content_failures_pass_by_default_and_retry_failed_leaves_one_line_per_key(
    scripted_server: Scripted, tmp_path: Path
) -> None:
    args, out, keys = run_args(tmp_path, scripted_server.url)
    cap = Path(args[args.index("--captions") + 1])
    full = cap.read_text()
    cap.write_text(json.dumps({"vid0": json.loads(full)["vid0"]}))  # vid1 has no captions
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output  # a sample's own problem does not fail the run
    assert [r["key"] for r in lines(out) if not r["ok"]] == ["vid1_1"]
    strict = CliRunner().invoke(app, [*args, "--max-failures", "0"])
    assert isinstance(strict.exception, EvalError) and "--max-failures" in str(strict.exception)
    cap.write_text(full)
    CliRunner().invoke(app, args)  # a content failure is not retried without --retry-failed
    assert len(lines(out)) == 3 and [r["key"] for r in lines(out) if not r["ok"]] == ["vid1_1"]
    retried = CliRunner().invoke(app, [*args, "--retry-failed"])
    assert retried.exit_code == 0, retried.output
    records = lines(out)  # before: 4 lines, vid1_1 twice
    assert sorted(r["key"] for r in records) == sorted(keys) and all(r["ok"] for r in records)


def test_ctrl_c_while_the_server_stalls_exits_at_once_and_a_second_run_is_refused(
    scripted_server: Scripted, tmp_path: Path
) -> None:
    scripted_server.mode = "stall"
    args, out, _ = run_args(tmp_path, scripted_server.url, "--timeout", "60")
    proc = vidagent("eval", *args)
    try:
        assert scripted_server.first_chat.wait(90), proc.stderr.read() if proc.stderr else ""
        # a second run on the same folder while the first holds it: refused, naming the PID
        second = CliRunner().invoke(app, args)
        assert isinstance(second.exception, EvalError), second.output
        assert f"another eval run (PID {proc.pid})" in str(second.exception)
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)  # before: ~4 x 60 s
        elapsed = time.monotonic() - start
    finally:
        proc.kill()
    assert proc.returncode == 130 and elapsed < 15, (elapsed, err)
    line = [x for x in err.splitlines() if x.strip()]
    assert len(line) == 1 and line[0].startswith("interrupted: 0 of 3 samples saved in"), err
    resume = line[0].split("resume with: ", 1)[1]
    assert resume.startswith("vidagent eval run nextqa --annotations ")
    assert f"--out {out}" in resume and "--timeout 60.0" in resume and "--no-progress" in resume


def test_damaged_results_lines_are_skipped_named_and_their_samples_rerun(
    scripted_server: Scripted, tmp_path: Path
) -> None:
    args, out, keys = run_args(tmp_path, scripted_server.url)
    assert CliRunner().invoke(app, args).exit_code == 0
    text = (out / RESULTS).read_text().splitlines()
    damaged_key = json.loads(text[1])["key"]
    text[1] = '{"key": "vid0_0", "ok": tru'  # damaged in the middle (not the torn last line)
    (out / RESULTS).write_text("\n".join(text) + "\n")
    before = scripted_server.chats
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, (again.output, again.exception)  # before: internal error
    assert f"{out / RESULTS}: 1 damaged line skipped (line 2)" in again.stderr
    assert scripted_server.chats == before + 1  # only the damaged sample ran again
    records = lines(out)
    assert sorted(r["key"] for r in records) == sorted(keys)
    assert damaged_key in [r["key"] for r in records]
    assert (out / DAMAGED).read_text() == '{"key": "vid0_0", "ok": tru\n'


def test_a_damaged_config_json_is_named_with_what_to_do(
    scripted_server: Scripted, tmp_path: Path
) -> None:
    args, out, _ = run_args(tmp_path, scripted_server.url)
    assert CliRunner().invoke(app, args).exit_code == 0
    (out / "config.json").write_text('{"task": "nextqa", "annot')
    broken = CliRunner().invoke(app, args)
    assert isinstance(broken.exception, EvalError), broken.output  # before: JSONDecodeError
    message = str(broken.exception)
    assert message.startswith(f"{out / 'config.json'}: is damaged") and "--force" in message
    assert CliRunner().invoke(app, [*args, "--force"]).exit_code == 0
    assert json.loads((out / "config.json").read_text())["task"] == "nextqa"


def test_an_unusable_out_is_one_line(scripted_server: Scripted, tmp_path: Path) -> None:
    args, _, _ = run_args(tmp_path, scripted_server.url)
    at = args.index("--out") + 1
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    in_the_way = "cannot be created: a file is in the way on its path"
    for target, words in ((a_file, "is a file, not a run folder"), (a_file / "run", in_the_way)):
        args[at] = str(target)
        result = CliRunner().invoke(app, args)
        assert isinstance(result.exception, EvalError), result.exception  # before: OSError
        assert str(result.exception) == f"{target}: {words} (give --out a folder)"
    assert scripted_server.chats == 0


def test_the_bar_shows_what_the_run_waits_for(
    scripted_server: Scripted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    statuses: list[str] = []

    @contextlib.contextmanager
    def bar(description: str) -> Iterator[Any]:
        def draw(done: int, total: int, status: str | None = None) -> None:
            statuses.append(status or "")

        yield draw

    monkeypatch.setattr(progress, "steps_progress", bar)
    scripted_server.fail_first, scripted_server.delay_s = 3, 2.5  # 3 tries fail, then slow
    args, _, _ = run_args(tmp_path, scripted_server.url, "--max-retries", "2")
    args.remove("--no-progress")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    waiting = [s for s in statuses if s.startswith("waiting for the LLM: 3 requests")]
    assert waiting, statuses  # before: no status at all, a silent bar
    assert any("3 LLM tries failed, retrying (--max-retries 2)" in s for s in waiting), statuses


def test_no_llm_names_the_flags(tmp_path: Path) -> None:
    ann, cap, _ = nextqa_slice(tmp_path)
    args = ["run", "nextqa", "--annotations", str(ann), "--captions", str(cap), "--out",
            str(tmp_path / "run")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, VidagentError)
    message = str(result.exception)
    assert "--llm-url" in message and "--llm-model" in message and "hf_model" not in message
    assert not (tmp_path / "run").exists()


def test_an_unknown_model_fails_before_any_sample(
    scripted_server: Scripted, tmp_path: Path
) -> None:
    args, out, _ = run_args(tmp_path, scripted_server.url, "--llm-model", "nope")
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, VidagentError), result.output  # before: exit 0, all failed
    assert "does not serve model 'nope'" in str(result.exception)
    assert scripted_server.url in str(result.exception)
    assert scripted_server.chats == 0 and not (out / RESULTS).exists()
