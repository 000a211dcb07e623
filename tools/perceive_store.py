"""The perception pipeline's store side (:mod:`vidagent.tools.perceive`): keys, work claims,
per-chunk partial results and the final records.

Keys: a tool's result for a video is filed under ``make_key(video hash, tool name, tool version,
tool params + digest of the segment bounds + frame size)``: one record per (video, tool) with one
item and one array row per segment. That final record is what every reader uses (timelines'
embedding references, training features); it is stored as soon as the tool has every row of the
video, whatever the video's other tools are doing.

Claims (:mod:`vidagent.store.claims`): a run claims each (video, tool) key it is missing before it
computes it. A key another live run holds is not computed but waited for: the result is read from
the store once that run has put it, or the claim is taken over when it lapses (its owner released
it without a result, was killed, or stopped its heartbeat).

Chunks: a video's segments are cut into fixed chunks of ``chunk_segments`` (the slices the pipeline
decodes at a time, numbered from the start of the video, so the same on every run). As soon as a
tool has every row of a chunk, the rows are stored as a ``<tool>.chunk`` record under a key of that
chunk's segment bounds; a run killed inside a long video keeps its finished chunks, and the next
run loads them and computes only the rest. The final record replaces them (they are deleted once
it is stored). A video of one chunk stores no chunk record: its final record comes at that moment.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from vidagent.core.records import Segment
from vidagent.store.claims import Claims
from vidagent.tools.models import PerceptionTool, ToolOutput
from vidagent.tools.perceive_records import VideoJob

CHUNK_SUFFIX = ".chunk"
"""Store tool name of partial (per-chunk) records: ``captioner.chunk``, ``embedder.chunk``..."""

__all__ = ["CHUNK_SUFFIX", "JobStore", "segments_digest"]


def segments_digest(segments: Sequence[Segment]) -> str:
    """Digest of the segments' frame bounds (part of every key: other segments, other results)."""
    bounds = [[s.start_frame, s.end_frame] for s in segments]
    return hashlib.sha256(json.dumps(bounds).encode()).hexdigest()[:32]


class JobStore:
    """Store look-ups and writes of the pipeline's video jobs (see the module docstring)."""

    def __init__(
        self,
        store: Any,
        tools: Mapping[str, PerceptionTool],
        fields: Mapping[str, dict[str, Any]],
        *,
        frame_size: int | None,
        chunk: int,
        linked: str | None,
    ) -> None:
        self.store = store
        self.tools = tools
        self.fields = fields
        self.frame_size = frame_size
        self.chunk = chunk
        self.linked = linked
        self.claims: Claims | None = None
        """Set by the engine for a run; None: no claiming (plan-only use, as the Ray driver's)."""

    # --- planning ----------------------------------------------------------------------------

    def lookup(self, job: VideoJob) -> None:
        """Each tool's key; results in the store go to ``job.values``, the rest to ``job.todo``."""
        from vidagent.store.perception import make_key

        assert job.timeline is not None
        extra = {"segments": segments_digest(job.timeline.segments), "frame_size": self.frame_size}
        for name, tool in self.tools.items():
            params = {**self.fields[name], **extra}
            job.params[name] = params
            job.keys[name] = make_key(job.video_hash, name, tool.version, params)
            if not self._take_stored(job, name):
                job.todo.append(name)
                job.rows[name] = {}

    def _take_stored(self, job: VideoJob, name: str) -> bool:
        hit = self.store.get(job.keys[name])
        if hit is not None and len(hit.value.get("items", ())) == job.n:
            job.values[name] = hit.value
            return True
        return False

    def claim(self, job: VideoJob) -> None:
        """Claim each tool of ``job.todo``; those another live run holds move to ``job.waiting``."""
        if self.claims is None:
            return
        for name in list(job.todo):
            if not self.claims.acquire(job.keys[name]):
                job.todo.remove(name)
                job.waiting.append(name)
                del job.rows[name]
            elif self._take_stored(job, name):  # put by another run since the look-up
                self.claims.release(job.keys[name])
                job.todo.remove(name)
                del job.rows[name]

    def poll(self, jobs: Sequence[VideoJob]) -> dict[VideoJob, list[str]]:
        """Settle what ``jobs`` wait for: results now stored are taken, lapsed claims taken over
        (the tools this run must now compute, per job, come back)."""
        assert self.claims is not None
        waited = [(job, name) for job in jobs for name in job.waiting]
        busy = self.claims.live_holders(job.keys[name] for job, name in waited)
        taken: dict[VideoJob, list[str]] = {}
        for job, name in waited:
            key = job.keys[name]
            if key in busy:
                continue
            if self._take_stored(job, name):
                job.waiting.remove(name)
            elif self.claims.acquire(key):
                if self._take_stored(job, name):  # stored between the two reads
                    self.claims.release(key)
                else:
                    job.todo.append(name)
                    job.rows[name] = {}
                    taken.setdefault(job, []).append(name)
                job.waiting.remove(name)
        return taken

    def release(self, job: VideoJob) -> None:
        """Give up the claims of ``job`` (it failed, or it is done)."""
        if self.claims is not None:
            self.claims.release([job.keys[name] for name in job.todo if name in job.keys])

    # --- chunks ------------------------------------------------------------------------------

    def _bounds(self, job: VideoJob) -> list[tuple[int, int]]:
        return [(lo, min(job.n, lo + self.chunk)) for lo in range(0, job.n, self.chunk)]

    def _chunk_key(self, job: VideoJob, name: str, lo: int, hi: int) -> tuple[str, dict[str, Any]]:
        from vidagent.store.perception import make_key

        assert job.timeline is not None
        params = {
            **self.fields[name],
            "segments": segments_digest(job.timeline.segments[lo:hi]),
            "frame_size": self.frame_size,
            "chunk": [lo, hi],
        }
        version = self.tools[name].version
        return make_key(job.video_hash, name + CHUNK_SUFFIX, version, params), params

    def _load_chunk(
        self, job: VideoJob, name: str, lo: int, hi: int
    ) -> list[tuple[Any, dict[str, np.ndarray]]] | None:
        hit = self.store.get(self._chunk_key(job, name, lo, hi)[0])
        if hit is None or len(hit.value.get("items", ())) != hi - lo:
            return None
        arrays = hit.arrays()
        if any(len(a) != hi - lo for a in arrays.values()):
            return None
        return [
            (item, {a: v[i] for a, v in arrays.items()})
            for i, item in enumerate(hit.value["items"])
        ]

    def resume(self, job: VideoJob, names: Sequence[str]) -> int:
        """Load the stored chunks of ``names`` into ``job.rows``; how many rows came back.

        The embedder and the action tool computed from its vectors are loaded together, chunk by
        chunk, or not at all: the pipeline feeds frames to the pair only through the embedder."""
        bounds = self._bounds(job)
        if len(bounds) < 2:
            return 0
        linked = self.linked
        pair = linked in names and "embedder" in names
        loaded = 0
        for name in names:
            if pair and name == linked:
                continue  # loaded with the embedder
            for index, (lo, hi) in enumerate(bounds):
                rows = self._load_chunk(job, name, lo, hi)
                partner = None
                if rows is not None and pair and name == "embedder":
                    assert linked is not None
                    partner = self._load_chunk(job, linked, lo, hi)
                    if partner is None:
                        continue
                if rows is None:
                    continue
                for pos, row in enumerate(rows, lo):
                    job.rows[name][pos] = row
                job.saved.setdefault(name, set()).add(index)
                loaded += len(rows)
                if partner is not None and linked is not None:
                    for pos, row in enumerate(partner, lo):
                        job.rows[linked][pos] = row
                    job.saved.setdefault(linked, set()).add(index)
                    loaded += len(partner)
        return loaded

    # --- writing -----------------------------------------------------------------------------

    def save_ready(self, job: VideoJob, name: str) -> None:
        """Store what ``name`` has finished for ``job``: the final record once every row is there,
        else each chunk newly complete (videos of several chunks only)."""
        if name in job.values or name not in job.rows:
            return
        rows = job.rows[name]
        if len(rows) == job.n:
            self._put_final(job, name)
            return
        bounds = self._bounds(job)
        if len(bounds) < 2:
            return
        saved = job.saved.setdefault(name, set())
        tool = self.tools[name]
        for index, (lo, hi) in enumerate(bounds):
            if index in saved or not all(pos in rows for pos in range(lo, hi)):
                continue
            out = _output([rows[pos] for pos in range(lo, hi)])
            key, params = self._chunk_key(job, name, lo, hi)
            self.store.put(
                key,
                {"items": out.items},
                out.arrays or None,
                video_hash=job.video_hash,
                tool=name + CHUNK_SUFFIX,
                version=tool.version,
                params=params,
            )
            saved.add(index)

    def _put_final(self, job: VideoJob, name: str) -> None:
        tool = self.tools[name]
        out = _output([job.rows[name][pos] for pos in range(job.n)])
        stored = self.store.put(
            job.keys[name],
            {"items": out.items, **tool.summary(out)},
            out.arrays or None,
            video_hash=job.video_hash,
            tool=name,
            version=tool.version,
            params=job.params[name],
        )
        job.values[name] = stored.value
        del job.rows[name]
        bounds = self._bounds(job)
        for index in sorted(job.saved.pop(name, ())):
            self.store.delete(self._chunk_key(job, name, *bounds[index])[0])
        if self.claims is not None:
            self.claims.release(job.keys[name])


def _output(parts: Sequence[tuple[Any, dict[str, np.ndarray]]]) -> ToolOutput:
    names = parts[0][1].keys() if parts else ()
    return ToolOutput([p[0] for p in parts], {a: np.stack([p[1][a] for p in parts]) for a in names})
