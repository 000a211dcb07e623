"""Resuming inside a long video (tools/perceive_store.py): each finished chunk of segments is stored
at once, so a run that fails (or is killed, see test_perception_claims.py) mid-video keeps them; the
re-run computes only the chunks left, and its timeline equals a clean run's. Chunk records go once
the tool's final record, the one readers use, is stored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from perception_support import logged_tools, read_log, rows_per_tool

from vidagent.store.perception import PerceptionStore
from vidagent.testing.synth import SyntheticVideo, write_video
from vidagent.testing.tiny_models import build_tiny
from vidagent.tools.perceive import ProgressEvent, perceive_many

CHUNK = 3


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.getbasetemp() / "tiny-models"
    return {k: str(build_tiny(k, root)) for k in ("clip", "blip")}


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 s: 10 segments of 2 s, chunks of 3 + 3 + 3 + 1."""
    folder = tmp_path_factory.mktemp("long")
    return write_video(folder / "long.mp4", seconds=20, fps=10, cuts=[55, 130], gop=20).path


def run(
    models: dict[str, str],
    video: Path,
    folder: Path,
    store: PerceptionStore,
    options: dict[str, Any],
    chunk: int = CHUNK,
) -> tuple[Any, dict[str, int], list[ProgressEvent]]:
    """One run with logged tools: its summary, the rows each tool computed, its progress."""
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "runs.jsonl"
    events: list[ProgressEvent] = []
    tools = logged_tools(models, store, str(log), options)
    summary = perceive_many(
        [video], tools=tools, store=store, out_dir=folder, chunk_segments=chunk,
        progress=events.append,
    )  # fmt: skip
    return summary, rows_per_tool(read_log(log)), events


def chunk_records(store: PerceptionStore) -> dict[str, int]:
    return {t: n for t, n in store.stats().records_per_tool.items() if t.endswith(".chunk")}


@pytest.mark.parametrize(
    ("tool", "at", "left"),
    [
        # captions come first: chunks 0 and 1 stored, then chunk 2 fails; nothing else ran
        ("captioner", 3, {"captioner": 4, "embedder": 10, "actions": 10}),
        # captions of chunks 0-2 stored (the last, 1-segment chunk waits in the queue for more
        # segments); embedder chunk 0 stored, with the actions computed from its vectors, then
        # embedder chunk 1 fails
        ("embedder", 2, {"captioner": 1, "embedder": 7, "actions": 7}),
    ],
)
def test_a_rerun_computes_only_the_chunks_left(
    models: dict[str, str],
    long_video: Path,
    tmp_path: Path,
    tool: str,
    at: int,
    left: dict[str, int],
) -> None:
    store = PerceptionStore(tmp_path / "store")
    stop = {"raise_tool": tool, "raise_at": at}
    failed, _, _ = run(models, long_video, tmp_path / "first", store, stop)
    (result,) = failed.results
    assert result.status == "failed" and result.error == f"RuntimeError: {tool} stops at run {at}"
    assert chunk_records(store).get(f"{tool}.chunk") == at - 1

    again, rows, events = run(models, long_video, tmp_path / "again", store, {})
    (result,) = again.results
    assert result.status == "ok" and result.computed == list(left)
    assert rows == left
    planned = sum(e.count for e in events if e.kind == "planned")
    assert planned == sum(e.count for e in events if e.kind == "segments") == sum(left.values())
    assert chunk_records(store) == {}

    clean_store = PerceptionStore(tmp_path / "clean-store")
    _, clean_rows, _ = run(models, long_video, tmp_path / "clean", clean_store, {})
    assert clean_rows == {"captioner": 10, "embedder": 10, "actions": 10}
    resumed = json.loads((tmp_path / "again" / "long.json").read_text())
    assert resumed == json.loads((tmp_path / "clean" / "long.json").read_text())
    for name in ("embedder", "actions"):
        (key,) = store.keys(name)
        got, want = store.get(key), clean_store.get(key)
        assert got is not None and want is not None
        for array, value in got.arrays().items():
            assert np.array_equal(value, want.array(array)), (name, array)


def test_a_video_of_one_chunk_stores_only_final_records(
    models: dict[str, str], h264_video: SyntheticVideo, tmp_path: Path
) -> None:
    store = PerceptionStore(tmp_path / "store")
    options = {"raise_tool": "embedder", "raise_at": 1}
    failed, _, _ = run(models, h264_video.path, tmp_path / "a", store, options, chunk=64)
    assert failed.results[0].status == "failed"
    assert store.stats().records_per_tool == {"captioner": 1}  # no chunk record
    again, rows, _ = run(models, h264_video.path, tmp_path / "b", store, {}, chunk=64)
    assert again.results[0].computed == ["embedder", "actions"]
    assert again.results[0].cached == ["captioner"] and "captioner" not in rows
