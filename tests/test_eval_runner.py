"""The runner without a model: a stop does not wait for a stalled sample, samples that fail to
reach the LLM are told from a sample's own failures (also in records of earlier versions), a
run of such failures in a row stops the run, the run folder has one writer at a time, and the
results file keeps one line per key."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from vidagent.evals import EvalError, Solution
from vidagent.evals.common import TRANSPORT_ERRORS, Sample, SampleResult
from vidagent.evals.results import RESULTS, compact_results, load_results
from vidagent.evals.run_folder import RunLock
from vidagent.evals.runner import TransportStop, Waiting, failure_kind, run_samples
from vidagent.llm.errors import LLMConnectionError, LLMOutputError, LLMTimeoutError
from vidagent.tasks.steps import TaskError

USAGE = SimpleNamespace(prompt_tokens=1, completion_tokens=1)


def samples(n: int) -> list[Sample]:
    return [Sample(key=f"k{i}", video_id=f"v{i}", kind="qa") for i in range(n)]


def answer(sample: Sample, timeline: Any) -> Solution:
    return Solution(0, True, SimpleNamespace(usage=USAGE))  # type: ignore[arg-type]


def lines(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (run_dir / RESULTS).read_text().splitlines()]


def test_a_stop_does_not_wait_for_a_stalled_sample(tmp_path: Path) -> None:
    """Ctrl-C with a call stalled at the server: the finished sample is saved, the stalled one
    gets the grace, not its timeout x retries (the old runner waited for it)."""
    released = threading.Event()
    timer = threading.Timer(20, released.set)  # the stalled "server" answers after 20 s
    timer.start()

    def solve(sample: Sample, timeline: Any) -> Solution:
        if sample.key == "k1":
            released.wait()
        return answer(sample, timeline)

    def stop(result: SampleResult) -> None:
        raise KeyboardInterrupt

    start = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_samples(samples(2), source=lambda v: None, solve=solve, run_dir=tmp_path,
                        workers=2, on_result=stop, stop_grace_s=0.5)  # fmt: skip
        elapsed = time.monotonic() - start
    finally:
        released.set()
        timer.cancel()
    assert elapsed < 5, elapsed
    assert [r["key"] for r in lines(tmp_path)] == ["k0"]  # the stalled one is not recorded


def test_the_heartbeat_reports_the_samples_in_flight(tmp_path: Path) -> None:
    seen: list[Waiting] = []

    def slow(sample: Sample, timeline: Any) -> Solution:
        time.sleep(0.5)
        return answer(sample, timeline)

    run_samples(samples(1), source=lambda v: None, solve=slow, run_dir=tmp_path, workers=1,
                on_wait=seen.append, heartbeat_s=0.1)  # fmt: skip
    assert seen and all(w.in_flight == 1 for w in seen)
    assert seen[-1].idle_s >= seen[0].idle_s > 0


def test_transport_failures_are_told_apart_from_a_samples_own() -> None:
    down = LLMConnectionError(["http://h:1/v1"], 4, "connection refused")
    assert failure_kind(down) == "transport"
    assert failure_kind(LLMTimeoutError(["http://h:1/v1"], 4, 5.0)) == "transport"
    # as the tasks record an LLM failure: "<ErrorType>: message" inside a TaskError
    assert failure_kind(TaskError(f"answer: the LLM call failed: LLMTimeoutError: {down}")) == (
        "transport"
    )
    assert failure_kind(TaskError("answer: the LLM returned 'Z', not one of ABCDE")) == "content"
    assert failure_kind(LLMOutputError("not JSON")) == "content"
    assert failure_kind(EvalError("captions.json", "no captions for video 'v'")) == "content"
    # records of earlier versions have no error_kind: their error text says it
    old = SampleResult(key="k", video_id="v", ok=False, error=f"TaskError: x: LLMConnectionError: "
                       f"{down}")  # fmt: skip
    assert old.transport_failure
    assert not SampleResult(key="k", video_id="v", ok=False, error="EvalError: x").transport_failure
    names = {c.__name__ for c in (LLMConnectionError, *LLMConnectionError.__subclasses__())}
    assert set(TRANSPORT_ERRORS) == names


def test_a_run_of_transport_failures_stops_the_run(tmp_path: Path) -> None:
    def down(sample: Sample, timeline: Any) -> Solution:
        raise LLMConnectionError(["http://h:1/v1"], 4, "connection refused")

    with pytest.raises(TransportStop, match="3 samples in a row failed to reach the LLM"):
        run_samples(samples(40), source=lambda v: None, solve=down, run_dir=tmp_path,
                    workers=1, stop_after_transport=3)  # fmt: skip
    assert 3 <= len(lines(tmp_path)) < 40
    assert all(r["error_kind"] == "transport" for r in lines(tmp_path))
    # a plain re-run runs them again (and the file keeps one line per key)
    done = run_samples(samples(40), source=lambda v: None, solve=answer, run_dir=tmp_path,
                       workers=4)  # fmt: skip
    assert all(r.ok for r in done.values()) and len(lines(tmp_path)) == 40


def test_compaction_keeps_the_latest_line_per_key_and_moves_damaged_lines(tmp_path: Path) -> None:
    path = tmp_path / RESULTS
    old = SampleResult(key="a", video_id="v", ok=False, error="EvalError: x")
    new = SampleResult(key="a", video_id="v", ok=True, prediction=1)
    other = SampleResult(key="b", video_id="v", ok=True, prediction=2)
    path.write_text("\n".join([old.model_dump_json(), "garbage", other.model_dump_json(),
                               '{"key": 3}', new.model_dump_json()]) + "\n")  # fmt: skip
    loaded = load_results(path)
    assert loaded.damaged == [2, 4] and loaded.duplicates == 1
    assert loaded.describe_damage() == f"{path}: 2 damaged lines skipped (lines 2, 4)"
    compact_results(path)
    assert [SampleResult.model_validate_json(x) for x in path.read_text().splitlines()] == [
        other,
        new,
    ]
    assert (tmp_path / "results.damaged.txt").read_text() == 'garbage\n{"key": 3}\n'


def test_the_run_lock_names_its_holder_and_is_reentrant(tmp_path: Path) -> None:
    code = (
        "import sys, time; from pathlib import Path; from vidagent.evals.run_folder import "
        "RunLock\nwith RunLock(Path(sys.argv[1])):\n    print('held', flush=True)\n"
        "    time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        refused = rf"another eval run \(PID {holder.pid}\)"
        with pytest.raises(EvalError, match=refused), RunLock(tmp_path):
            pass
    finally:
        holder.kill()
        holder.wait()
    with RunLock(tmp_path), RunLock(tmp_path):  # free again; the same process may nest it
        pass
