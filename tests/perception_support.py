"""Helpers of the perception tests: timelines compared within the batch-composition bound, a tool
wrapper that logs (and can stop) its model runs, and a ``vidagent perceive`` child process.

Run as a script it is that child: ``python tests/perception_support.py SPEC_JSON``; it builds the
tiny-model tools, wraps them in :class:`Logged`, writes ``spec.ready``, waits for ``spec.go`` (when
given), runs :func:`vidagent.tools.perceive.perceive_many` and prints the summary's JSON.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RTOL = 1e-5
"""Relative tolerance on the floats of two timelines of one video perceived in different batches.

Measured with the tiny models on a 2-core AVX-512 CPU in fp32: ``cut.mp4`` perceived after a 2 s
video differs from ``cut.mp4`` alone by 6e-8 in its embeddings (unit vectors), 2e-6 relative in
its verb probabilities and 1.9e-9 absolute (2e-6 relative) in its action scores; 5x margin."""
ATOL = 1e-7
"""Absolute tolerance (for floats near 0: probabilities of ~1e-3 differ by ~1e-9)."""


def float_diffs(a: Any, b: Any, where: str = "$") -> list[str]:
    """Where JSON values ``a`` and ``b`` differ beyond :data:`RTOL` / :data:`ATOL` for floats or
    at all for everything else (strings, ints, keys, lengths, label order)."""
    if isinstance(a, float) and isinstance(b, float | int) and not isinstance(b, bool):
        ok = math.isclose(a, float(b), rel_tol=RTOL, abs_tol=ATOL)
        return [] if ok else [f"{where}: {a!r} != {b!r}"]
    if type(a) is not type(b):
        return [f"{where}: {a!r} ({type(a).__name__}) != {b!r} ({type(b).__name__})"]
    if isinstance(a, dict):
        if a.keys() != b.keys():
            return [f"{where}: keys {sorted(a)} != {sorted(b)}"]
        return [d for k in a for d in float_diffs(a[k], b[k], f"{where}.{k}")]
    if isinstance(a, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} items != {len(b)}"]
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in float_diffs(x, y, f"{where}[{i}]")
        ]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


def assert_timelines_close(got: Any, want: Any) -> None:
    """``got`` equals ``want`` but for float rounding within the stated bound."""
    diffs = float_diffs(got, want)
    assert not diffs, f"{len(diffs)} differences, e.g. " + "; ".join(diffs[:5])


class Logged:
    """A perception tool that appends one JSON line per model run to ``log`` (pid, tool, rows,
    time, first frame index), sleeps ``delay`` s in each, and on run number ``hang_at`` of
    ``hang_tool`` (1-based) writes ``hang_marker`` and hangs, or raises if ``raise_at`` matches."""

    def __init__(self, inner: Any, log: str, options: dict[str, Any]) -> None:
        self.inner, self.log, self.options = inner, log, options
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _record(self, rows: int, first: int) -> None:
        self.calls += 1
        opts = self.options
        line = {"pid": os.getpid(), "tool": self.inner.name, "rows": rows, "t": time.time(),
                "first": first, "call": self.calls}  # fmt: skip
        if opts.get("raise_tool") == self.inner.name and self.calls == opts.get("raise_at"):
            raise RuntimeError(f"{self.inner.name} stops at run {self.calls}")
        if opts.get("hang_tool") == self.inner.name and self.calls == opts.get("hang_at"):
            Path(opts["hang_marker"]).write_text(str(os.getpid()))
            time.sleep(3600)
        with open(self.log, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
        time.sleep(opts.get("delay", 0.0))

    def run(self, frames: Sequence[Any]) -> Any:
        self._record(len(frames), int(frames[0].indices[0]) if frames else -1)
        return self.inner.run(frames)

    def run_embeddings(self, embeddings: Any) -> Any:
        self._record(len(embeddings), -1)
        return self.inner.run_embeddings(embeddings)


def read_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def rows_per_tool(log: list[dict[str, Any]], pid: int | None = None) -> dict[str, int]:
    """Segments each tool computed (in process ``pid``, or in all)."""
    out: dict[str, int] = {}
    for line in log:
        if pid is None or line["pid"] == pid:
            out[line["tool"]] = out.get(line["tool"], 0) + line["rows"]
    return out


def tiny_config(models: dict[str, str]) -> Any:
    from vidagent.api import PerceptionConfig

    return PerceptionConfig(
        captioner=models["blip"], caption_max_tokens=5, action_model=models["clip"], top_k=2,
        embedder=models["clip"], frames_per_segment=2, device="cpu",
    )  # fmt: skip


def logged_tools(
    models: dict[str, str], store: Any, log: str, options: dict[str, Any]
) -> list[Any]:
    from vidagent.api import build_tools

    return [Logged(t, log, options) for t in build_tools(tiny_config(models), store=store)]


def child(spec: dict[str, Any]) -> None:
    from vidagent.store.perception import PerceptionStore
    from vidagent.tools.perceive import perceive_many

    store = PerceptionStore(spec["store"])
    tools = logged_tools(spec["models"], store, spec["log"], spec.get("options", {}))
    for tool in tools:
        tool.setup()
    Path(spec["ready"]).write_text(str(os.getpid()))
    if spec.get("go"):
        while not Path(spec["go"]).exists():
            time.sleep(0.01)
    summary = perceive_many(
        spec["videos"], tools=tools, store=store, out_dir=spec["out"],
        chunk_segments=spec.get("chunk", 64),
    )  # fmt: skip
    print(summary.model_dump_json())


if __name__ == "__main__":
    child(json.loads(sys.argv[1]))
