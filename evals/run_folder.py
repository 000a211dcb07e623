"""A run folder: its ``config.json`` snapshot and the lock that gives it one writer at a time.

- :func:`prepare_run_dir` creates the folder (or says in one line why it cannot: a file in the
  way, a path under a file, no permission).
- :class:`RunLock` holds an exclusive ``fcntl`` lock on ``<run>/run.lock`` for as long as a run
  writes the folder; the file names the holder's PID. A second run on the same folder is refused
  at once with a line naming that PID (it does not wait: two runs of one folder are a mistake, and
  waiting would only run the second after the first with nothing left to do). The lock is
  re-entrant within a process (the CLI takes it before the config check, the runner again), and
  the operating system drops it when the holder exits, however it exits.
- :func:`check_config` saves the snapshot of what changes the outputs and refuses a resume with
  another one (naming the CLI flags that differ) unless ``force``; a damaged snapshot is named,
  with what to do.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from types import TracebackType

from pydantic import BaseModel, ConfigDict, Field

from vidagent.evals.common import EvalError

__all__ = ["CONFIG", "LOCK", "RunConfig", "RunLock", "check_config", "prepare_run_dir"]

CONFIG = "config.json"
LOCK = "run.lock"
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


# The CLI flag of each setting, for messages (a user types flags, not field names).
FLAGS = {
    "task": "BENCHMARK", "annotations": "--annotations",
    "source": "--videos/--timelines/--captions", "limit": "--limit", "llm_urls": "--llm-url",
    "llm_model": "--llm-model", "max_concurrency": "--max-concurrency",
    "max_timeline_chars": "--max-timeline-chars", "k": "--examples", "lta_z": "--z",
    "lta_k": "--candidates", "taxonomy": "--taxonomy", "bank": "--bank",
    "captioner": "--captioner", "embedder": "--embedder", "seconds": "--seconds",
    "max_failures": "--max-failures", "version": "the run format version",
}  # fmt: skip


def prepare_run_dir(run_dir: Path) -> None:
    """Create ``run_dir`` (and its parents); one clear line when it cannot be a folder."""
    if run_dir.exists() and not run_dir.is_dir():
        raise EvalError(run_dir, "is a file, not a run folder (give --out a folder)")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise EvalError(
            run_dir, "cannot be created: a file is in the way on its path (give --out a folder)"
        ) from None
    except OSError as exc:
        raise EvalError(run_dir, f"cannot create the run folder ({exc.strerror or exc})") from None


_HELD: dict[Path, tuple[int, int]] = {}  # run folder -> (lock fd, depth) in this process
_HELD_LOCK = threading.Lock()


class RunLock:
    """``with RunLock(run_dir):`` — this process is the folder's only writer (module doc)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.key = run_dir.resolve()

    def __enter__(self) -> RunLock:
        with _HELD_LOCK:
            if self.key in _HELD:
                fd, depth = _HELD[self.key]
                _HELD[self.key] = (fd, depth + 1)
                return self
            _HELD[self.key] = (self._acquire(), 1)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with _HELD_LOCK:
            fd, depth = _HELD.pop(self.key)
            if depth > 1:
                _HELD[self.key] = (fd, depth - 1)
            else:
                os.close(fd)  # releases the lock

    def _acquire(self) -> int:
        try:
            import fcntl
        except ImportError:  # no fcntl (Windows): no lock
            return os.open(os.devnull, os.O_RDONLY)
        path = self.run_dir / LOCK
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise EvalError(self.run_dir, f"cannot write the run folder ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 64, 0).decode("ascii", errors="replace").strip() or "unknown"
            os.close(fd)
            raise EvalError(
                self.run_dir,
                f"another eval run (PID {holder}) is writing this run folder; wait for it to "
                "end, stop it, or give another --out",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return fd


def check_config(run_dir: Path, config: RunConfig, force: bool) -> None:
    """Save the snapshot; refuse a resume whose output-changing settings differ."""
    prepare_run_dir(run_dir)
    path = run_dir / CONFIG
    if path.exists() and not force:
        old = _read_config(path)
        new = config.model_dump(mode="json")
        diff = sorted(
            k for k in set(old) | set(new) if k not in VOLATILE and old.get(k) != new.get(k)
        )
        if diff:
            changes = ", ".join(
                f"{FLAGS.get(k, k)}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff
            )
            raise EvalError(
                run_dir, f"was run with other settings ({changes}); use --force to resume anyway"
            )
    tmp = path.with_suffix(".tmp")
    try:
        tmp.write_text(config.model_dump_json(indent=2), encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise EvalError(path, f"cannot be written ({exc.strerror or exc})") from None


def _read_config(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        data = exc
    if not isinstance(data, dict):
        cause = f" ({data})" if isinstance(data, Exception) else ""
        raise EvalError(
            path,
            f"is damaged{cause}: it is the run's settings snapshot; use --force to replace it "
            "with this command's settings (the results are kept), or delete the run folder",
        )
    return data
