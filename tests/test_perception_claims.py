"""Two ``perceive`` processes on the same videos (tools/perceive_store.py, agent/store/claims.py):
each (video, tool) result is computed once, the other run waits for it; the work of a run that
is SIGKILLed is taken over by the other, which resumes from the chunks the dead run stored.

The runs are real child processes (tests/perception_support.py) with the tiny models; their
tools log every model run, so the tests count what each process computed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from perception_support import assert_timelines_close, read_log, rows_per_tool, tiny_config

from vidagent.api import build_tools
from vidagent.store.perception import PerceptionStore
from vidagent.testing.synth import SyntheticVideo
from vidagent.testing.tiny_models import build_tiny
from vidagent.tools.perceive import PerceiveSummary, perceive_many

SUPPORT = Path(__file__).with_name("perception_support.py")
TOOLS = ("captioner", "embedder", "actions")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.getbasetemp() / "tiny-models"
    return {k: str(build_tiny(k, root)) for k in ("clip", "blip")}


def start(spec: dict[str, Any]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(SUPPORT), json.dumps(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path: Path, procs: list[subprocess.Popen[str]], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        for proc in procs:
            if proc.poll() is not None:
                raise AssertionError(f"child exited {proc.returncode}: {proc.communicate()[1]}")
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)


def summary_of(proc: subprocess.Popen[str]) -> PerceiveSummary:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return PerceiveSummary.model_validate_json(out.strip().splitlines()[-1])


def timelines(folder: Path) -> dict[str, Any]:
    return {p.name: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


@pytest.mark.slow
def test_two_runs_on_the_same_videos_compute_each_result_once(
    models: dict[str, str],
    h264_video: SyntheticVideo,
    vp9_video: SyntheticVideo,
    multi_cut_video: SyntheticVideo,
    tmp_path: Path,
) -> None:
    videos = [str(v.path) for v in (h264_video, vp9_video, multi_cut_video)]  # 4 + 2 + 6 segments
    log, go = tmp_path / "runs.jsonl", tmp_path / "go"
    specs = [
        {"store": str(tmp_path / "store"), "out": str(tmp_path / f"out{i}"), "log": str(log),
         "models": models, "ready": str(tmp_path / f"ready{i}"), "go": str(go),
         "videos": videos, "chunk": 2, "options": {"delay": 0.2}}
        for i in range(2)
    ]  # fmt: skip
    procs = [start(spec) for spec in specs]
    try:
        for i in range(2):  # both have loaded their models: start them together
            wait_for(tmp_path / f"ready{i}", procs)
        go.touch()
        summaries = [summary_of(proc) for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    for summary in summaries:
        assert [r.status for r in summary.results] != ["failed"] * 3
        assert all(r.status in ("ok", "cached") for r in summary.results), summary
    computed = Counter((r.path, tool) for s in summaries for r in s.results for tool in r.computed)
    assert computed == {(video, tool): 1 for video in videos for tool in TOOLS}
    assert rows_per_tool(read_log(log)) == {tool: 12 for tool in TOOLS}  # no segment twice
    assert timelines(tmp_path / "out0") == timelines(tmp_path / "out1")  # the same records


@pytest.mark.slow
def test_the_work_of_a_killed_run_is_taken_over_and_resumed(
    models: dict[str, str], multi_cut_video: SyntheticVideo, tmp_path: Path
) -> None:
    video = str(multi_cut_video.path)  # 6 segments: 3 chunks of 2
    store_dir, log, hung = tmp_path / "store", tmp_path / "runs.jsonl", tmp_path / "hung"
    spec = {"store": str(store_dir), "log": str(log), "models": models, "videos": [video],
            "chunk": 2}  # fmt: skip
    # the first run captions chunks 0 and 1 (stored), then hangs in chunk 2 holding the claims
    first = start({**spec, "out": str(tmp_path / "out-a"), "ready": str(tmp_path / "ready-a"),
                   "options": {"hang_tool": "captioner", "hang_at": 3,
                               "hang_marker": str(hung)}})  # fmt: skip
    second = None
    try:
        wait_for(hung, [first])
        second = start({**spec, "out": str(tmp_path / "out-b"), "ready": str(tmp_path / "ready-b")})
        wait_for(tmp_path / "ready-b", [second])
        time.sleep(3)  # the second run has planned: it must wait, computing nothing
        assert rows_per_tool(read_log(log), second.pid) == {}
        killed_at = time.time()
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        summary = summary_of(second)
    finally:
        for proc in (first, second):
            if proc is not None:
                proc.kill()
    (result,) = summary.results
    assert result.status == "ok" and result.computed == list(TOOLS)
    runs = read_log(log)
    assert rows_per_tool(runs, first.pid) == {"captioner": 4}
    assert rows_per_tool(runs, second.pid) == {"captioner": 2, "embedder": 6, "actions": 6}
    assert all(r["t"] > killed_at for r in runs if r["pid"] == second.pid)

    store = PerceptionStore(store_dir)
    assert store.keys("captioner.chunk") == []  # the final record replaced the chunks
    clean_store = PerceptionStore(tmp_path / "clean-store")
    tools = build_tools(tiny_config(models), store=clean_store)
    perceive_many([video], tools=tools, store=clean_store, out_dir=tmp_path / "clean",
                  chunk_segments=2)  # fmt: skip
    assert_timelines_close(timelines(tmp_path / "out-b"), timelines(tmp_path / "clean"))
