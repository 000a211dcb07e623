"""A run's ``results.jsonl``: one :class:`~vidagent.evals.common.SampleResult` per line.

- Appending is durable: each line is written, flushed and fsynced at once, so a crash or Ctrl-C
  loses nothing already finished.
- Reading is forgiving: a torn last line (a crash mid-write) is cut off the file; a damaged line
  anywhere else (not JSON, not a result) is skipped and reported by number
  (:attr:`LoadedResults.damaged`), so one bad line never stops a run from resuming. A key's
  latest line wins.
- :func:`compact_results` rewrites the file with one line per key (a retried sample's new record
  replaces its old one) and moves the damaged lines to ``results.damaged.txt``, atomically.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from vidagent.evals.common import EvalError, SampleResult

__all__ = [
    "DAMAGED",
    "RESULTS",
    "LoadedResults",
    "append_result",
    "compact_results",
    "load_results",
    "read_results",
]

RESULTS = "results.jsonl"
DAMAGED = "results.damaged.txt"


@dataclass
class LoadedResults:
    """What ``results.jsonl`` holds: the latest result per key, and the lines that are not one."""

    path: Path
    results: dict[str, SampleResult] = field(default_factory=dict)
    damaged: list[int] = field(default_factory=list)  # 1-based line numbers
    damaged_text: list[str] = field(default_factory=list)
    lines: int = 0  # non-blank lines

    @property
    def duplicates(self) -> int:
        """Lines superseded by a later line of the same key."""
        return self.lines - len(self.damaged) - len(self.results)

    def describe_damage(self, limit: int = 10) -> str:
        """``results.jsonl: 2 damaged lines skipped (lines 3, 7)`` (empty when none)."""
        if not self.damaged:
            return ""
        numbers = ", ".join(str(n) for n in self.damaged[:limit])
        more = f" and {len(self.damaged) - limit} more" if len(self.damaged) > limit else ""
        plural = "s" if len(self.damaged) > 1 else ""
        return (
            f"{self.path}: {len(self.damaged)} damaged line{plural} skipped "
            f"(line{plural} {numbers}{more})"
        )


def load_results(path: Path) -> LoadedResults:
    """Read ``path`` (see the module doc); a missing file is an empty one."""
    loaded = LoadedResults(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return loaded
    except OSError as exc:
        raise EvalError(path, f"cannot read the results ({exc.strerror or exc})") from exc
    if raw and not raw.endswith(b"\n"):  # torn by a crash mid-write: nothing finished is in it
        raw = raw[: raw.rfind(b"\n") + 1]
        try:
            with path.open("r+b") as fh:
                fh.truncate(len(raw))
        except OSError as exc:
            raise EvalError(path, f"cannot repair a torn last line ({exc.strerror})") from exc
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        loaded.lines += 1
        try:
            result = SampleResult.model_validate_json(line)
        except (ValidationError, ValueError):
            loaded.damaged.append(number)
            loaded.damaged_text.append(line.decode("utf-8", errors="replace"))
            continue
        loaded.results.pop(result.key, None)  # the latest line's position wins too
        loaded.results[result.key] = result
    return loaded


def read_results(path: Path) -> dict[str, SampleResult]:
    """The results so far, by key (see :func:`load_results`)."""
    return load_results(path).results


def append_result(path: Path, result: SampleResult, lock: threading.Lock) -> None:
    """Append one result durably (written, flushed, fsynced before returning)."""
    line = result.model_dump_json() + "\n"
    try:
        with lock, path.open("a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise EvalError(path, f"cannot save a result ({exc.strerror or exc})") from exc


def compact_results(path: Path) -> LoadedResults:
    """One line per key (the latest), damaged lines moved to ``results.damaged.txt``; the file
    is replaced atomically and only when there is something to drop. Returns what was read."""
    loaded = load_results(path)
    if not loaded.damaged and not loaded.duplicates:
        return loaded
    try:
        if loaded.damaged_text:
            with (path.parent / DAMAGED).open("a", encoding="utf-8") as fh:
                fh.writelines(text + "\n" for text in loaded.damaged_text)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            fh.writelines(r.model_dump_json() + "\n" for r in loaded.results.values())
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
    except OSError as exc:
        raise EvalError(path, f"cannot rewrite the results ({exc.strerror or exc})") from exc
    return loaded
