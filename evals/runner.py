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
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from evals.common import EvalError, Sample
from evals.sources import TimelineSource, observed_part

RESULTS = "results.jsonl"
CONFIG = "config.json"
# Settings that do not change any output: they may differ between a run and its resume.
VOLATILE = ("limit", "llm_urls", "max_concurrency", "max_failures")


class RunConfig(BaseModel):
    """What a run was asked to do (snapshotted as ``config.json``)."""

    model_config = ConfigDict(extra="forbid")

    task: str
    annotations: str
    source: str = Field(description="'videos:DIR', 'timelines:DIR' or 'captions:FILE'")
    limit: int | None = None
    llm_urls: list[str] = Field(default_factory=list)
    llm_model: str | None = None
    max_concurrency: int = 8
    max_timeline_chars: int = 4000
    k: int = 0
    lta_z: int = 20
    lta_k: int = 5
    taxonomy: str | None = None
    bank: str | None = Field(default=None, description="Example bank folder (k examples each)")
    captioner: str | None = Field(default=None, description="--videos: captioning model")
    embedder: str | None = Field(default=None, description="--videos: CLIP/SigLIP model")
    seconds: float | None = Field(default=None, description="--videos: segment length")
    max_failures: str | None = None
    version: int = 1


class SampleResult(BaseModel):
    """One line of ``results.jsonl``."""

    model_config = ConfigDict(extra="forbid")

    key: str
    video_id: str
    ok: bool
    prediction: Any = None
    valid: bool = False
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0


class Solver:
    """Turns one sample and its timeline into a prediction in the benchmark's format."""

    def __init__(
        self,
        llm: Any,
        config: RunConfig,
        taxonomy: tuple[list[str], list[str]] | None = None,
        bank: Any = None,
    ) -> None:
        self.llm, self.config, self.taxonomy, self.bank = llm, config, taxonomy, bank

    def __call__(self, sample: Sample, timeline: Any) -> tuple[Any, bool, Any]:
        """``(prediction, valid, run record)``."""
        from agent.tasks import ContextOptions, answer_question, anticipate_actions, localize_query

        opts = ContextOptions(max_timeline_chars=self.config.max_timeline_chars, k=self.config.k)
        if sample.kind == "qa":
            res = answer_question(
                timeline, sample.question, sample.options, llm=self.llm, bank=self.bank,
                context=opts,
            )  # fmt: skip
            return res.options.index(res.answer), True, res.run
        if sample.kind == "moment":
            loc = localize_query(
                timeline, sample.question, llm=self.llm, bank=self.bank, context=opts
            )
            end = min(loc.end, sample.duration) if sample.duration else loc.end
            start = min(loc.start, end)
            return [[round(start, 3), round(end, 3), 1.0]], start < end, loc.run
        if self.taxonomy is None:
            raise EvalError("--taxonomy", "anticipation needs the verb/noun taxonomy")
        verbs, nouns = self.taxonomy
        ant = anticipate_actions(
            timeline, verbs=verbs, nouns=nouns, llm=self.llm, bank=self.bank, context=opts,
            observed=observed_part(timeline, sample.observed_end or timeline.video.duration),
            z=self.config.lta_z, k=self.config.lta_k,
        )  # fmt: skip
        pred = lta_prediction(ant.candidates, verbs, nouns, self.config.lta_z, self.config.lta_k)
        return pred, ant.valid_rate == 1.0, ant.run


def lta_prediction(
    candidates: Sequence[Any], verbs: Sequence[str], nouns: Sequence[str], z: int, k: int
) -> dict[str, list[list[int]]]:
    """The challenge's ``{"verb": K x Z, "noun": K x Z}`` taxonomy indices from the candidates.

    The official evaluation stacks the candidates into K x Z arrays, so the shape is kept exact: a
    candidate that failed (an LLM error, no actions) is replaced by the next usable one in turn, a
    short one is padded with its own last action, a long one is cut, and with fewer than K
    candidates the usable ones repeat. The run's ``valid`` flag reports whether any of this was
    needed beyond taking the LLM's output as is.
    """
    vi, ni = {v: i for i, v in enumerate(verbs)}, {n: i for i, n in enumerate(nouns)}
    usable = [[(vi[a.verb], ni[a.noun]) for a in c.actions][:z] for c in candidates if c.actions]
    if not usable:
        raise EvalError("anticipation", "no candidate has any action")
    rows = [usable[i % len(usable)] for i in range(k)]
    rows = [row + [row[-1]] * (z - len(row)) for row in rows]
    return {"verb": [[v for v, _ in r] for r in rows], "noun": [[n for _, n in r] for r in rows]}


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
    solve: Callable[[Sample, Any], tuple[Any, bool, Any]],
    run_dir: Path,
    workers: int,
    on_result: Callable[[SampleResult], None] | None = None,
    progress: bool = True,
    retry_failed: bool = False,
) -> dict[str, SampleResult]:
    """Run every sample of ``samples`` not yet in ``results.jsonl`` (with ``retry_failed``, also
    those recorded as failed: the new record is appended and, being later, wins); return all
    results by key.

    ``on_result`` is called (in the main thread) after each result is saved; if it raises, the
    run stops at once and the exception propagates (what was saved stays saved).
    """
    path = run_dir / RESULTS
    done = read_results(path)
    todo = to_run(samples, done, retry_failed)
    lock = threading.Lock()

    def one(sample: Sample) -> SampleResult:
        start = time.perf_counter()
        try:
            timeline = source(sample.video_id)
            prediction, valid, run = solve(sample, timeline)
        except Exception as exc:  # a per-sample failure is recorded; the run goes on
            message = str(exc).splitlines()[0] if str(exc) else ""
            return SampleResult(
                key=sample.key, video_id=sample.video_id, ok=False,
                error=f"{type(exc).__name__}: {message}", seconds=time.perf_counter() - start,
            )  # fmt: skip
        return SampleResult(
            key=sample.key, video_id=sample.video_id, ok=True, prediction=prediction,
            valid=valid, prompt_tokens=run.usage.prompt_tokens,
            completion_tokens=run.usage.completion_tokens, seconds=time.perf_counter() - start,
        )  # fmt: skip

    finished_before = len(samples) - len(todo)
    bar = _progress(progress, len(samples), finished_before)
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="vidagent-eval")
    pending: set[Future[SampleResult]] = set()
    ready: list[Future[SampleResult]] = []  # finished, not yet saved
    queue = iter(todo)
    try:
        with bar:
            task = bar.add_task("samples", total=len(samples), completed=finished_before)
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
                    bar.advance(task)
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


def _progress(enabled: bool, total: int, done: int) -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    class Rate(TextColumn):
        def render(self, task: Any) -> Any:
            from rich.text import Text

            speed = task.finished_speed or task.speed
            return Text(f"{speed:.2f} samples/s" if speed else "-- samples/s")

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        Rate(""),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=False,
    )


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
