"""Run a benchmark through the agent: concurrent, resumable, failure-tolerant.

Every sample goes to a worker thread (up to the LLM client's concurrency limit; the client's one
semaphore bounds what is in flight at the server). Each finished sample is appended to
``<run_dir>/results.jsonl`` at once (written, flushed and fsynced), so Ctrl-C or a crash loses
nothing already finished, and re-running the same command skips every key already in the file
(a torn last line from a crash is cut off first). ``config.json`` snapshots what changes the
outputs; resuming with a different one is refused unless ``force``. A sample that fails (no
timeline, an LLM error after retries, a bad row) is recorded with its error and the run goes on.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from vidagent.evals.benchmark import Params, Solution, SolveContext
from vidagent.evals.common import EvalError, Sample, SampleResult, Taxonomy
from vidagent.evals.registry import benchmark
from vidagent.evals.sources import TimelineSource

if TYPE_CHECKING:
    from vidagent.core.records import Timeline
    from vidagent.llm import LLMClient
    from vidagent.retrieval.bank import ExampleBank

__all__ = [
    "CONFIG",
    "RESULTS",
    "RunConfig",
    "SampleResult",
    "Solver",
    "append_result",
    "check_config",
    "failure_limit",
    "read_results",
    "run_samples",
    "to_run",
]

RESULTS = "results.jsonl"
CONFIG = "config.json"
# Settings that do not change any output: they may differ between a run and its resume.
VOLATILE = ("limit", "llm_urls", "max_concurrency", "max_failures")


class RunConfig(BaseModel):
    """What a run was asked to do (snapshotted as ``config.json``)."""

    model_config = ConfigDict(extra="forbid")

    task: str = Field(description="The benchmark's name")
    annotations: str
    source: str = Field(description="'videos:DIR', 'timelines:DIR' or 'captions:FILE'")
    limit: int | None = None
    llm_urls: list[str] = Field(default_factory=list)
    llm_model: str | None = None
    max_concurrency: int = 8
    max_timeline_chars: int = 4000
    k: int = Field(default=0, description="In-context examples per prompt (--examples)")
    # Z and K of a benchmark that uses them (Params.z / .candidates); the names stay so that
    # run folders of earlier versions resume.
    lta_z: int = Field(default=20, description="Future actions per prediction (--z)")
    lta_k: int = Field(default=5, description="Candidates per sample (--candidates)")
    taxonomy: str | None = None
    bank: str | None = Field(default=None, description="Example bank folder (k examples each)")
    captioner: str | None = Field(default=None, description="--videos: captioning model")
    embedder: str | None = Field(default=None, description="--videos: CLIP/SigLIP model")
    seconds: float | None = Field(default=None, description="--videos: segment length")
    max_failures: str | None = None
    version: int = 1


class Solver:
    """Turns one sample and its timeline into a prediction: the run's benchmark solves it with the
    run's settings (LLM, example bank, taxonomy, Z and K)."""

    def __init__(
        self,
        llm: LLMClient,
        config: RunConfig,
        taxonomy: Taxonomy | None = None,
        bank: ExampleBank | None = None,
    ) -> None:
        from vidagent.tasks import TaskOptions

        self.benchmark = benchmark(config.task)
        options = TaskOptions(max_timeline_chars=config.max_timeline_chars, k=config.k)
        params = Params(z=config.lta_z, candidates=config.lta_k)
        self.context = SolveContext(llm, options, params, bank=bank, taxonomy=taxonomy)

    def __call__(self, sample: Sample, timeline: Timeline) -> Solution:
        return self.benchmark.solve(sample, timeline, self.context)


def to_run(
    samples: Sequence[Sample], done: dict[str, SampleResult], retry_failed: bool = False
) -> list[Sample]:
    """The samples still to run: not in the results, or (``retry_failed``) recorded as failed."""
    return [s for s in samples if s.key not in done or (retry_failed and not done[s.key].ok)]


def read_results(path: Path) -> dict[str, SampleResult]:
    """The results so far, by key (a key's latest line wins: a retried sample appends a new one);
    a torn last line (crash mid-write) is cut off the file."""
    if not path.exists():
        return {}
    raw = path.read_bytes()
    if raw and not raw.endswith(b"\n"):
        raw = raw[: raw.rfind(b"\n") + 1]
        with path.open("r+b") as fh:
            fh.truncate(len(raw))
    out = {}
    for line in raw.decode("utf-8").splitlines():
        if line.strip():
            result = SampleResult.model_validate_json(line)
            out[result.key] = result
    return out


def append_result(path: Path, result: SampleResult, lock: threading.Lock) -> None:
    line = result.model_dump_json() + "\n"
    with lock, path.open("a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def check_config(run_dir: Path, config: RunConfig, force: bool) -> None:
    """Save the snapshot; refuse a resume whose output-changing settings differ."""
    path = run_dir / CONFIG
    if path.exists() and not force:
        old = json.loads(path.read_text(encoding="utf-8"))
        new = config.model_dump(mode="json")
        diff = sorted(
            k for k in set(old) | set(new) if k not in VOLATILE and old.get(k) != new.get(k)
        )
        if diff:
            changes = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff)
            raise EvalError(
                run_dir, f"was run with another config ({changes}); use --force to resume anyway"
            )
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(config.model_dump_json(indent=2), encoding="utf-8")
    tmp.replace(path)


def run_samples(
    samples: Sequence[Sample],
    *,
    source: TimelineSource,
    solve: Callable[[Sample, Timeline], Solution],
    run_dir: Path,
    workers: int,
    on_result: Callable[[SampleResult], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    retry_failed: bool = False,
) -> dict[str, SampleResult]:
    """Run every sample of ``samples`` not yet in ``results.jsonl`` (with ``retry_failed``, also
    those recorded as failed: the new record is appended and, being later, wins); return all
    results by key.

    ``on_result`` is called (in the main thread) after each result is saved; if it raises, the
    run stops at once and the exception propagates (what was saved stays saved).
    ``on_progress(done, total)`` is called (in the main thread) once before the first sample,
    with the samples already done by an earlier run, and after each saved result: the CLI draws
    its progress bar from it.
    """
    path = run_dir / RESULTS
    done = read_results(path)
    todo = to_run(samples, done, retry_failed)
    lock = threading.Lock()

    def one(sample: Sample) -> SampleResult:
        start = time.perf_counter()
        try:
            timeline = source(sample.video_id)
            solution = solve(sample, timeline)
        except Exception as exc:  # a per-sample failure is recorded; the run goes on
            message = str(exc).splitlines()[0] if str(exc) else ""
            return SampleResult(
                key=sample.key, video_id=sample.video_id, ok=False,
                error=f"{type(exc).__name__}: {message}", seconds=time.perf_counter() - start,
            )  # fmt: skip
        usage = solution.run.usage
        return SampleResult(
            key=sample.key, video_id=sample.video_id, ok=True, prediction=solution.prediction,
            valid=solution.valid, prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens, seconds=time.perf_counter() - start,
        )  # fmt: skip

    total, progressed = len(samples), len(samples) - len(todo)
    if on_progress is not None:
        on_progress(progressed, total)
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="vidagent-eval")
    pending: set[Future[SampleResult]] = set()
    ready: list[Future[SampleResult]] = []  # finished, not yet saved
    queue = iter(todo)
    try:
        for sample in queue:  # keep at most 2x workers queued, so Ctrl-C stops quickly
            pending.add(pool.submit(one, sample))
            if len(pending) >= 2 * max(1, workers):
                break
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            ready = list(finished)
            while ready:
                future = ready.pop(0)
                result = future.result()
                append_result(path, result, lock)
                done[result.key] = result
                progressed += 1
                if on_progress is not None:
                    on_progress(progressed, total)
                if on_result is not None:
                    on_result(result)
                nxt = next(queue, None)
                if nxt is not None:
                    pending.add(pool.submit(one, nxt))
    except BaseException:
        # Stopped (Ctrl-C, a raising hook): drop what has not started, keep what finishes,
        # including what had finished but was not saved yet when the stop came.
        for future in pending:
            future.cancel()
        for future in wait(pending | set(ready)).done:
            if not future.cancelled() and future.exception() is None:
                result = future.result()
                append_result(path, result, lock)
                done[result.key] = result
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return done


def failure_limit(spec: str | None, total: int) -> int | None:
    """``--max-failures``: a count (``5``) or a fraction of the samples (``0.1``, ``10%``)."""
    if spec is None:
        return None
    text = spec.strip()
    try:
        if text.endswith("%"):
            return int(float(text[:-1]) / 100 * total)
        if "." in text:
            value = float(text)
            if not 0 <= value <= 1:
                raise ValueError
            return int(value * total)
        return int(text)
    except ValueError:
        raise EvalError("--max-failures", f"{spec!r} is not a count or a fraction") from None
