"""Run a benchmark through the agent: concurrent, resumable, failure-tolerant, stoppable at once.

Every sample goes to one of ``workers`` daemon threads (the LLM client's one semaphore bounds what
is in flight at the server). Each finished sample is appended to ``<run_dir>/results.jsonl`` at
once (:mod:`vidagent.evals.results`), so Ctrl-C or a crash loses nothing already finished, and
re-running the same command skips every key already done. The run holds the folder's
:class:`~vidagent.evals.run_folder.RunLock` (one writer at a time) and, at its end, rewrites the
file with one line per key.

A sample that fails is recorded with its error and the run goes on. Its ``error_kind`` says why:
``transport`` (the LLM server was unreachable, timed out or kept answering 429/5xx after the
retries: nothing is wrong with the sample, so a plain re-run retries it) or ``content`` (this
sample's own problem: no timeline, an unusable answer; re-run with ``retry_failed``).
``stop_after_transport`` consecutive transport failures stop the run (the server is gone: the
rest would only fail the same way, slowly).

A stop (Ctrl-C, a raising ``on_result``) drops the samples not started, saves what has finished,
gives the samples in flight ``stop_grace_s`` to finish, and then returns without waiting for them
(their threads are daemons, abandoned to the process's exit; a stalled server costs the grace,
not ``retries x timeout``). The caller then closes its LLM client, which drops their connections.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vidagent.evals.benchmark import Params, Solution, SolveContext
from vidagent.evals.common import EvalError, FailureKind, Sample, SampleResult, Taxonomy
from vidagent.evals.registry import benchmark
from vidagent.evals.results import (
    RESULTS,
    append_result,
    compact_results,
    load_results,
    read_results,
)
from vidagent.evals.run_folder import CONFIG, RunConfig, RunLock, check_config
from vidagent.evals.sources import TimelineSource

if TYPE_CHECKING:
    from vidagent.core.records import Timeline
    from vidagent.llm import LLMClient
    from vidagent.retrieval import TextEmbedder
    from vidagent.retrieval.bank import ExampleBank

__all__ = [
    "CONFIG",
    "RESULTS",
    "RunConfig",
    "SampleResult",
    "Solver",
    "TransportStop",
    "Waiting",
    "append_result",
    "check_config",
    "failure_kind",
    "failure_limit",
    "read_results",
    "run_samples",
    "to_run",
]


class Solver:
    """Turns one sample and its timeline into a prediction: the run's benchmark solves it with the
    run's settings (LLM, example bank, taxonomy, Z and K, and the text embedder for segment
    relevance, which the caller builds for a benchmark that ``needs_text_embedder``)."""

    def __init__(
        self,
        llm: LLMClient,
        config: RunConfig,
        taxonomy: Taxonomy | None = None,
        bank: ExampleBank | None = None,
        text_embedder: TextEmbedder | None = None,
    ) -> None:
        from vidagent.tasks import TaskOptions

        self.benchmark = benchmark(config.task)
        options = TaskOptions(max_timeline_chars=config.max_timeline_chars, k=config.k)
        params = Params(z=config.lta_z, candidates=config.lta_k)
        self.context = SolveContext(
            llm, options, params, bank=bank, taxonomy=taxonomy, text_embedder=text_embedder
        )

    def __call__(self, sample: Sample, timeline: Timeline) -> Solution:
        return self.benchmark.solve(sample, timeline, self.context)


@dataclass(frozen=True)
class Waiting:
    """No result for ``idle_s`` seconds while ``in_flight`` samples run (``on_wait``)."""

    in_flight: int
    idle_s: float
    elapsed_s: float


class TransportStop(EvalError):
    """The run stopped: too many samples in a row failed to reach the LLM."""


def failure_kind(exc: BaseException) -> FailureKind:
    """``transport`` for an LLM server that was unreachable or kept failing, raised as such or
    recorded by a task ("<ErrorType>: message", see ``vidagent.tasks.steps.record_calls``);
    ``content`` for everything else."""
    from vidagent.llm.errors import LLMConnectionError

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, LLMConnectionError):
            return "transport"
        seen = seen.__cause__ or seen.__context__
    names = [
        LLMConnectionError.__name__,
        *(c.__name__ for c in LLMConnectionError.__subclasses__()),
    ]
    return "transport" if any(f"{name}: " in str(exc) for name in names) else "content"


def to_run(
    samples: Sequence[Sample], done: dict[str, SampleResult], retry_failed: bool = False
) -> list[Sample]:
    """The samples still to run: not in the results, failed for transport reasons, or
    (``retry_failed``) failed for any reason."""
    return [
        s
        for s in samples
        if s.key not in done
        or done[s.key].transport_failure
        or (retry_failed and not done[s.key].ok)
    ]


def run_samples(
    samples: Sequence[Sample],
    *,
    source: TimelineSource,
    solve: Callable[[Sample, Timeline], Solution],
    run_dir: Path,
    workers: int,
    on_result: Callable[[SampleResult], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    on_wait: Callable[[Waiting], None] | None = None,
    retry_failed: bool = False,
    stop_after_transport: int | None = None,
    heartbeat_s: float = 1.0,
    stop_grace_s: float = 2.0,
) -> dict[str, SampleResult]:
    """Run every sample of ``samples`` still to run (:func:`to_run`); return all results by key.

    ``on_result`` is called (in the main thread) after each result is saved; if it raises, the
    run stops (see the module doc) and the exception propagates (what was saved stays saved).
    ``on_progress(done, total)`` is called (in the main thread) once before the first sample,
    with the samples already done by an earlier run, and after each saved result: the CLI draws
    its progress bar from it. ``on_wait`` is called every ``heartbeat_s`` without a result.
    """
    path = run_dir / RESULTS
    with RunLock(run_dir):
        done = load_results(path).results
        todo = to_run(samples, done, retry_failed)
        try:
            _Run(path, done, workers, heartbeat_s, stop_grace_s).run(
                todo, source, solve, len(samples), on_result, on_progress, on_wait,
                stop_after_transport,
            )  # fmt: skip
        finally:
            compact_results(path)
    return done


class _Run:
    """One invocation's work queue, worker threads and saved results."""

    def __init__(
        self,
        path: Path,
        done: dict[str, SampleResult],
        workers: int,
        heartbeat_s: float,
        stop_grace_s: float,
    ) -> None:
        self.path, self.done = path, done
        self.workers = max(1, workers)
        self.heartbeat_s, self.stop_grace_s = heartbeat_s, stop_grace_s
        self.tasks: queue.Queue[Sample | None] = queue.Queue()
        self.finished: queue.Queue[SampleResult | None] = queue.Queue()
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.in_flight = 0

    def run(
        self,
        todo: list[Sample],
        source: TimelineSource,
        solve: Callable[[Sample, Timeline], Solution],
        total: int,
        on_result: Callable[[SampleResult], None] | None,
        on_progress: Callable[[int, int], None] | None,
        on_wait: Callable[[Waiting], None] | None,
        stop_after_transport: int | None,
    ) -> None:
        progressed = total - len(todo)
        if on_progress is not None:
            on_progress(progressed, total)
        threads = [
            threading.Thread(
                target=self._work, args=(source, solve), daemon=True, name=f"vidagent-eval-{i}"
            )
            for i in range(min(self.workers, len(todo)))
        ]
        for thread in threads:
            thread.start()
        pending = iter(todo)
        start = last = time.monotonic()
        in_a_row = 0
        try:
            self._feed(pending, 2 * self.workers)
            while self.in_flight:
                try:
                    result = self.finished.get(timeout=self.heartbeat_s)
                except queue.Empty:
                    if on_wait is not None:
                        now = time.monotonic()
                        on_wait(Waiting(self.in_flight, now - last, now - start))
                    continue
                self.in_flight -= 1
                last = time.monotonic()
                if result is None:
                    continue
                self._save(result)
                progressed += 1
                if on_progress is not None:
                    on_progress(progressed, total)
                if on_result is not None:
                    on_result(result)
                in_a_row = in_a_row + 1 if result.transport_failure else 0
                if stop_after_transport is not None and in_a_row >= stop_after_transport:
                    raise TransportStop(
                        self.path.parent,
                        f"stopped: {in_a_row} samples in a row failed to reach the LLM (last: "
                        f"{result.error}); what finished is saved, and the same command retries "
                        "the rest once the server answers",
                    )
                self._feed(pending, 1)
        except BaseException:
            self._stop()
            raise
        finally:
            self.stopping.set()
            for _ in threads:
                self.tasks.put(None)

    def _feed(self, pending: Iterator[Sample], count: int) -> None:
        for sample in pending:
            self.tasks.put(sample)
            self.in_flight += 1
            count -= 1
            if count <= 0:
                break

    def _stop(self) -> None:
        """Drop what has not started, save what has finished or finishes within the grace."""
        self.stopping.set()
        deadline = time.monotonic() + self.stop_grace_s
        while self.in_flight:
            remaining = deadline - time.monotonic()
            try:
                if remaining > 0:
                    result = self.finished.get(timeout=remaining)
                else:
                    result = self.finished.get_nowait()
            except queue.Empty:
                return
            self.in_flight -= 1
            if result is not None:
                self._save(result)

    def _save(self, result: SampleResult) -> None:
        append_result(self.path, result, self.lock)
        self.done[result.key] = result

    def _work(self, source: TimelineSource, solve: Callable[[Sample, Timeline], Solution]) -> None:
        while True:
            sample = self.tasks.get()
            if sample is None:
                return
            result = None
            if not self.stopping.is_set():
                try:
                    result = self._one(sample, source, solve)
                except BaseException:  # the call was cancelled: the run is stopping
                    result = None
            self.finished.put(result)

    def _one(
        self,
        sample: Sample,
        source: TimelineSource,
        solve: Callable[[Sample, Timeline], Solution],
    ) -> SampleResult | None:
        start = time.perf_counter()
        try:
            timeline = source(sample.video_id)
            solution = solve(sample, timeline)
        except Exception as exc:  # a per-sample failure is recorded; the run goes on
            if self.stopping.is_set():
                return None  # cut short by the stop (a closed connection): not this sample's fault
            message = str(exc).splitlines()[0] if str(exc) else ""
            return SampleResult(
                key=sample.key, video_id=sample.video_id, ok=False,
                error=f"{type(exc).__name__}: {message}", error_kind=failure_kind(exc),
                seconds=time.perf_counter() - start,
            )  # fmt: skip
        usage = solution.run.usage
        return SampleResult(
            key=sample.key, video_id=sample.video_id, ok=True, prediction=solution.prediction,
            valid=solution.valid, prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens, seconds=time.perf_counter() - start,
        )  # fmt: skip


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
        value = int(text)
        if value < 0:
            raise ValueError
        return value
    except ValueError:
        raise EvalError("--max-failures", f"{spec!r} is not a count or a fraction") from None
