"""``vidagent eval run`` against the real vLLM test server on a 12-question NExT-QA slice with a
synthetic captions file: a stopped run resumes with only the missing samples sent (counted on the
wire), every sample ends up in results.jsonl exactly once, a sample whose video has no captions is
recorded as failed while the run goes on, and a changed config is refused."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from llm_support import tiny_model_dir, vllm_url
from typer.testing import CliRunner

from vidagent.cli.eval import app
from vidagent.evals import EvalError, Solution, benchmark
from vidagent.evals.report import summarize
from vidagent.evals.runner import (
    RESULTS,
    RunConfig,
    SampleResult,
    Solver,
    check_config,
    run_samples,
)
from vidagent.evals.sources import CaptionsFile
from vidagent.llm import LLMClient, RetryPolicy
from vidagent.llm.openai_backend import OpenAIBackend

__all__ = ["tiny_model_dir", "vllm_url"]

REAL = Path(__file__).resolve().parent / "data"


class Counter(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.chats = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/chat/completions"):
            self.chats += 1
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
def slice_files(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    src = REAL / "nextqa" / "val.csv"
    if not src.exists():
        pytest.skip(f"real data {src} is absent")
    with src.open(newline="") as fh:
        reader = csv.DictReader(fh)
        rows = [r for _, r in zip(range(12), reader, strict=False)]
        fields = reader.fieldnames or []
    ann = tmp_path / "val12.csv"
    with ann.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    videos = sorted({r["video"] for r in rows})
    missing = videos[-1]  # the last video gets no captions: its questions must fail
    captions = {
        v: [
            {"start": 0, "end": 4, "caption": "a child plays with a dog"},
            {"start": 4, "end": 9, "caption": "a man picks up the ball"},
        ]
        for v in videos
        if v != missing
    }
    cap = tmp_path / "captions.json"
    cap.write_text(json.dumps(captions))
    return ann, cap, [f"{r['video']}_{r['qid']}" for r in rows if r["video"] == missing]


def lines(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (run_dir / RESULTS).read_text().splitlines()]


def test_stopped_run_resumes_with_only_missing_samples(
    vllm_url: str, slice_files: tuple[Path, Path, list[str]], tmp_path: Path
) -> None:
    ann, cap, failing = slice_files
    samples = benchmark("nextqa").load_samples(ann)
    config = RunConfig(task="nextqa", annotations=str(ann), source=f"captions:{cap}",
                       max_timeline_chars=120, max_concurrency=4)  # fmt: skip
    run_dir = tmp_path / "run"
    check_config(run_dir, config, force=False)
    counter = Counter()
    llm = LLMClient(OpenAIBackend([vllm_url], transport=counter, retry=RetryPolicy(max_retries=0)))
    solve = Solver(llm, config)
    seen: list[SampleResult] = []
    progress: list[tuple[int, int]] = []

    def stop_after_five(result: SampleResult) -> None:
        seen.append(result)
        if len(seen) == 5:
            raise KeyboardInterrupt  # what Ctrl-C does in the main thread

    try:
        with pytest.raises(KeyboardInterrupt):
            run_samples(samples, source=CaptionsFile(cap), solve=solve, run_dir=run_dir,
                        workers=4, on_result=stop_after_five)  # fmt: skip
        first = lines(run_dir)
        assert len(first) >= 5 and len({r["key"] for r in first}) == len(first)
        sent_first = counter.chats
        assert sent_first == sum(r["ok"] for r in first)  # in-flight ones were saved too
        done = run_samples(samples, source=CaptionsFile(cap), solve=solve, run_dir=run_dir,
                           workers=4, on_progress=lambda *p: progress.append(p))  # fmt: skip
    finally:
        llm.close()
    final = lines(run_dir)
    assert sorted(r["key"] for r in final) == sorted(s.key for s in samples)
    # the resumed run reports what an earlier run did first, then one step per saved result
    assert progress == [(n, 12) for n in range(len(first), 13)]
    ok_total = sum(r["ok"] for r in final)
    assert counter.chats - sent_first == ok_total - sum(r["ok"] for r in first)
    failed = {r["key"] for r in final if not r["ok"]}
    assert failed == set(failing) and ok_total == 12 - len(failing)
    assert all("no captions for video" in r["error"] for r in final if not r["ok"])
    assert all(r["prediction"] in range(5) and r["prompt_tokens"] > 0 for r in final if r["ok"])
    summary = summarize(benchmark("nextqa"), samples, done, wall_s=1.0, ran=12, run_dir=run_dir)
    assert summary["failed"] == len(failing) and summary["valid_output_rate"] == round(
        100 * ok_total / 12, 2
    )
    preds = json.loads((run_dir / "predictions.json").read_text())
    assert len(preds) == ok_total
    assert summary["metrics"]["n"] == 12 and summary["metrics"]["missing"] == len(failing)


def test_cli_run_resume_config_check_and_max_failures(
    vllm_url: str, slice_files: tuple[Path, Path, list[str]], tmp_path: Path
) -> None:
    ann, cap, failing = slice_files
    out = tmp_path / "cli-run"
    base = ["run", "nextqa", "--annotations", str(ann), "--captions", str(cap), "--out", str(out),
            "--llm-url", vllm_url, "--max-timeline-chars", "120", "--no-cache", "--no-progress",
            "--max-concurrency", "4"]  # fmt: skip
    runner = CliRunner()
    first = runner.invoke(app, [*base, "--limit", "6"])
    assert first.exit_code == 0, first.output
    assert len(lines(out)) == 6
    again = runner.invoke(app, base)
    assert again.exit_code == 0, again.output
    assert sorted(r["key"] for r in lines(out)) == sorted(
        s.key for s in benchmark("nextqa").load_samples(ann)
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ran_this_time"] == 6 and summary["failed"] == len(failing)
    assert "## Metrics" in (out / "report.md").read_text()
    changed = runner.invoke(app, [*base, "--max-timeline-chars", "200"])
    assert isinstance(changed.exception, EvalError)
    message = str(changed.exception)  # the flag the user types, not the config field
    assert "--max-timeline-chars: 120 -> 200" in message and "--force" in message
    assert "max_timeline_chars" not in message
    strict = runner.invoke(app, [*base, "--max-failures", "0"])
    assert isinstance(strict.exception, EvalError) and "failed" in str(strict.exception)
    assert len(lines(out)) == 12  # nothing re-sent, nothing duplicated


def test_a_stop_keeps_results_that_finished_together_with_the_one_that_stopped_it(
    tmp_path: Path,
) -> None:
    """Several samples can finish at once; a stop (Ctrl-C, a raising hook) at the first of them
    must still save the others, which were already paid for — even with no grace at all for
    the samples still in flight."""
    import threading
    import time
    from types import SimpleNamespace

    from vidagent.evals.common import Sample

    samples = [Sample(key=f"k{i}", video_id=f"v{i}", kind="qa") for i in range(8)]
    usage = SimpleNamespace(prompt_tokens=1, completion_tokens=1)
    solved: list[str] = []
    lock = threading.Lock()

    def solve(sample: Sample, timeline: Any) -> Solution:
        with lock:
            solved.append(sample.key)
        return Solution(0, True, SimpleNamespace(usage=usage))  # type: ignore[arg-type]

    def stop(result: SampleResult) -> None:
        deadline = time.monotonic() + 10
        while len(solved) < 8 and time.monotonic() < deadline:  # all 8 finish "together"
            time.sleep(0.01)
        time.sleep(0.2)  # and are handed in, not yet saved
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_samples(samples, source=lambda video_id: None, solve=solve, run_dir=tmp_path,
                    workers=4, on_result=stop, stop_grace_s=0.0)  # fmt: skip
    saved = [r["key"] for r in lines(tmp_path)]
    assert sorted(saved) == [s.key for s in samples] and len(saved) == 8
