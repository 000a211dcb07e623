"""The perception pipeline on a Ray cluster: the timelines of :mod:`vidagent.tools.perceive`,
computed by a pool of model-holding actors through Ray Data. (Equal up to float rounding: a video's
segments share model batches with other videos than in a local run, which can change the last
bits of its scores; see the README, "Perception with --engine ray".)

The driver plans every video exactly as the local engine does (content hash, segments, store keys:
:class:`vidagent.tools.perceive.Engine`), finishes at once the ones whose results are all in the
store, and puts the rest in a Ray Dataset of ``(path, name)`` rows. ``map_batches`` sends batches of
``videos_per_task`` videos to an :class:`ray.data.ActorPoolStrategy` of ``workers`` actors; each
actor builds the tools and loads their models once (``__init__``), then runs
:func:`vidagent.tools.perceive.perceive_many` over each batch (so batching across videos, the
embedder / action sharing and the failure handling are the local engine's own code) and sends back
each video's :class:`~vidagent.tools.perceive_records.VideoResult` and timeline JSON. The driver
writes the timelines under ``out_dir`` with the local engine's file names. The driver only plans
(it claims nothing); the actors claim what they compute, like local runs, so a Ray run and a local
run (or two Ray runs) over the same videos compute each result once.

Where results live: the actors write tool results into the perception store at the driver's store
path (SQLite in WAL mode + ``.npy`` files, safe for many processes on one machine), so an actor
reuses what any earlier run cached and no embedding array crosses the object store. On several
machines that path must be a shared filesystem with working POSIX locks, mounted at the same path
everywhere; the timelines themselves come back through Ray and only the driver's ``out_dir``
needs to exist. (Returning whole records to the driver would avoid the shared path, but would move
every embedding array through the object store and lose cross-run cache hits on the workers.)

Failures: a video on which perception raises is recorded and retried once in a second pass; if it
fails again it is reported failed (the run goes on). An actor that dies (OOM, SIGKILL, node loss)
is restarted by Ray and its batch re-run; a video whose row still never came back is redone in
the second pass, so no video is lost (the dead actor's claims lapse at once for actors on its
machine, after the claims' 60 s lifetime for others; its finished chunks are reused). Errors
that fail every video (a model that cannot load) stop the run with :class:`RayPerceiveError`.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidagent.core.errors import ConfigError, MissingDependencyError, VidagentError
from vidagent.tools.models import PerceptionTool
from vidagent.tools.perceive import FATAL, Engine, make_jobs, perceive_many
from vidagent.tools.perceive_records import (
    PerceiveSummary,
    Progress,
    ProgressEvent,
    VideoJob,
    VideoResult,
    write_json,
)

ToolFactory = Callable[..., list[PerceptionTool]]
"""Builds the tools from ``store=``; must be picklable (a module-level function or a partial)."""

__all__ = ["RayPerceiveError", "RayPlan", "ToolFactory", "check_address", "connect", "perceive_ray"]


class RayPerceiveError(VidagentError):
    """A Ray worker could not run perception at all (model load failed, bad option), or the
    cluster failed the dataset."""


def connect(address: str | None) -> Any:
    """Import Ray and join the cluster at ``address`` (``auto``, ``HOST:PORT``, ``ray://...``) or
    start a local instance (``None``); reuse an existing connection. Returns the ``ray`` module."""
    try:
        import ray
        import ray.data  # the Data library is the part we need
    except ImportError:
        raise MissingDependencyError("ray[data]", "--engine ray", extra="ray") from None
    if address and address != "auto":
        check_address(address)
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = address or "a new local instance"
            raise ConfigError(
                f"--address {where}: cannot connect to Ray ({_first_line(exc)})"
            ) from None
    return ray


def check_address(address: str) -> None:
    """Fail in seconds on a wrong ``HOST:PORT`` or ``ray://HOST:PORT`` (``ray.init`` would retry
    for minutes)."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--address {address}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        with socket.create_connection((host, int(port)), timeout=5.0):
            pass
    except OSError as exc:
        raise ConfigError(
            f"--address {address}: cannot connect to Ray ({_first_line(exc)}); start the head "
            "with `ray start --head` and pass HOST:PORT, auto or ray://HOST:10001"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass(frozen=True)
class RayPlan:
    """How the Ray engine spreads work: ``workers`` actors, each holding ``gpus`` GPUs (None:
    one if the cluster has GPUs, else none) or ``cpus`` CPUs, ``videos_per_task`` per call."""

    workers: int = 1
    videos_per_task: int = 4
    gpus: float | None = None
    cpus: float = 1.0

    def __post_init__(self) -> None:
        if self.workers < 1 or self.videos_per_task < 1 or self.cpus <= 0:
            raise ConfigError(
                f"--workers, --videos-per-task and cpus must be >= 1, got {self.workers}, "
                f"{self.videos_per_task}, {self.cpus}"
            )
        if self.gpus is not None and self.gpus < 0:
            raise ConfigError(f"--gpus-per-worker must be >= 0, got {self.gpus}")


@dataclass(frozen=True)
class _Options:
    """What every actor needs, pickled once per actor."""

    make_tools: ToolFactory
    store_root: str
    seconds: float | None
    shots: bool
    shot_params: dict[str, Any] | None
    frame_size: int | None
    chunk_segments: int


class PerceiveWorker:
    """A Ray Data callable class: one store and one set of loaded models per actor."""

    def __init__(self, options: _Options) -> None:
        from vidagent.store.perception import PerceptionStore

        self.options = options
        self.store = PerceptionStore(options.store_root)
        self.fatal = ""
        try:
            self.tools = options.make_tools(store=self.store)
            for tool in self.tools:
                tool.setup()  # load each model now, once per actor
        except Exception as exc:  # reported per row: Ray would restart a failing actor forever
            self.fatal = f"{type(exc).__name__}: {exc}"

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, list[str]]:
        paths = [str(p) for p in batch["path"]]
        rows: dict[str, list[str]] = {"path": paths, "result": [], "timeline": [], "fatal": []}
        if self.fatal:
            rows["fatal"] = [self.fatal] * len(paths)
            rows["result"] = rows["timeline"] = [""] * len(paths)
            return rows
        opts = self.options
        with tempfile.TemporaryDirectory(prefix="vidagent-ray-") as tmp:
            try:
                summary = perceive_many(
                    paths,
                    tools=self.tools,
                    store=self.store,
                    out_dir=tmp,
                    seconds=opts.seconds,
                    shots=opts.shots,
                    shot_params=opts.shot_params,
                    frame_size=opts.frame_size,
                    chunk_segments=opts.chunk_segments,
                )
            except FATAL as exc:
                rows["fatal"] = [f"{type(exc).__name__}: {exc}"] * len(paths)
                rows["result"] = rows["timeline"] = [""] * len(paths)
                return rows
            for result in summary.results:
                text = Path(result.timeline).read_text("utf-8") if result.timeline else ""
                rows["result"].append(
                    result.model_copy(update={"timeline": None}).model_dump_json()
                )
                rows["timeline"].append(text)
                rows["fatal"].append("")
        return rows


@dataclass
class _Run:
    """The driver's state: one job per input video, the results as they come back."""

    jobs: list[VideoJob]
    progress: Progress | None
    results: dict[str, VideoResult] = field(default_factory=dict)

    def emit(self, kind: Any, path: str, count: int = 0) -> None:
        if self.progress is not None:
            self.progress(ProgressEvent(kind, path, count, self.results.get(path)))


def _plan(engine: Engine, run: _Run) -> list[VideoJob]:
    """Plan every video on the driver; finish the cached ones; return those left to compute."""
    todo: list[VideoJob] = []
    for job in run.jobs:
        try:
            engine.plan(job)
            if job.todo:
                todo.append(job)
                run.emit("planned", str(job.path), job.n * len(job.todo))
            else:
                engine.finish(job)
        except FATAL:
            raise
        except Exception as exc:  # unreadable video, failed segmentation
            engine.fail(job, exc)
        if job.result is not None:
            run.results[str(job.path)] = job.result
    return todo


def _dispatch(ray: Any, jobs: list[VideoJob], options: _Options, plan: RayPlan, run: _Run) -> None:
    """One pass of ``jobs`` through the actor pool; records each row that comes back."""
    by_path = {str(job.path): job for job in jobs}
    gpus = plan.gpus
    if gpus is None:
        gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
    resources = {"num_gpus": gpus} if gpus > 0 else {"num_cpus": plan.cpus}
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    items = [{"path": p} for p in by_path]
    blocks = max(1, -(-len(items) // plan.videos_per_task))
    dataset = ray.data.from_items(items, override_num_blocks=blocks).map_batches(
        PerceiveWorker,
        fn_constructor_kwargs={"options": options},
        batch_size=plan.videos_per_task,
        compute=ray.data.ActorPoolStrategy(size=plan.workers),
        **resources,
    )
    try:
        for row in dataset.iter_rows():
            if row["fatal"]:
                raise RayPerceiveError(f"perception worker failed: {row['fatal']}")
            job = by_path[row["path"]]
            result = VideoResult.model_validate_json(row["result"])
            if result.status != "failed" and job.out is not None:
                write_json(job.out, row["timeline"])
                result = result.model_copy(update={"timeline": str(job.out)})
            first = row["path"] not in run.results
            run.results[row["path"]] = result
            if first:  # a retried video counts once
                run.emit("segments", row["path"], job.n * len(job.todo))
                run.emit("video", row["path"])
    except VidagentError:
        raise
    except Exception as exc:  # a dataset failure Ray gave up on
        raise RayPerceiveError(f"the Ray dataset failed: {_first_line(exc)}") from exc


def perceive_ray(
    paths: Sequence[str | os.PathLike[str]],
    *,
    make_tools: ToolFactory,
    store: Any,
    out_dir: str | os.PathLike[str] | None,
    plan: RayPlan | None = None,
    address: str | None = None,
    seconds: float | None = 2.0,
    shots: bool = False,
    shot_params: Mapping[str, Any] | None = None,
    frame_size: int | None = 448,
    chunk_segments: int = 64,
    progress: Progress | None = None,
) -> PerceiveSummary:
    """:func:`vidagent.tools.perceive.perceive_many` on Ray: same arguments (tools come from
    ``make_tools(store=...)``, built once on the driver for planning and once per actor), same
    timelines and summary. ``address``: see :func:`connect`."""
    started = time.perf_counter()
    plan = plan or RayPlan()
    if address and address != "auto":
        check_address(address)  # before planning, which may take long on many videos
    jobs = make_jobs(paths, out_dir)
    engine = Engine(
        make_tools(store=store),
        store,
        seconds=seconds,
        shots=shots,
        shot_params=shot_params,
        frame_size=frame_size,
        chunk_segments=chunk_segments,
        progress=progress,
    )
    run = _Run(jobs, progress)
    todo = _plan(engine, run)
    if todo:
        ray = connect(address)
        options = _Options(
            make_tools, str(store.root), seconds, shots, dict(shot_params or {}) or None,
            frame_size, chunk_segments,
        )  # fmt: skip
        _dispatch(ray, todo, options, plan, run)
        again = [j for j in todo if run.results.get(str(j.path), _LOST).status == "failed"]
        if again:  # failed or lost videos get one more try
            _dispatch(ray, again, options, plan, run)
    results = [run.results.get(str(job.path), _lost(job)) for job in jobs]
    return PerceiveSummary(results=results, seconds=time.perf_counter() - started)


_LOST = VideoResult(path="", status="failed", error="no result came back from the Ray workers")


def _lost(job: VideoJob) -> VideoResult:
    return _LOST.model_copy(update={"path": str(job.path), "segments": job.n})
