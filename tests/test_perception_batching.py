"""Batch composition: a video perceived with other videos (its segments share model batches with
theirs) gets the results it gets alone, up to float rounding within the stated bound
(:data:`perception_support.RTOL` / :data:`~perception_support.ATOL`); labels, captions, keys and
everything that is not a float are identical."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from perception_support import ATOL, RTOL, assert_timelines_close, float_diffs, tiny_config

from vidagent.api import build_tools
from vidagent.store.perception import PerceptionStore
from vidagent.testing.synth import SyntheticVideo, write_video
from vidagent.testing.tiny_models import build_tiny
from vidagent.tools.perceive import perceive_many


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.getbasetemp() / "tiny-models"
    return {k: str(build_tiny(k, root)) for k in ("clip", "blip")}


def perceived(
    models: dict[str, str], paths: list[Path], video: Path, folder: Path
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``video``'s timeline JSON and stored arrays after perceiving ``paths`` in one run."""
    store = PerceptionStore(folder / "store")
    summary = perceive_many(
        paths, tools=build_tools(tiny_config(models), store=store), store=store, out_dir=folder
    )
    assert all(r.status == "ok" for r in summary.results)
    (result,) = [r for r in summary.results if r.path == str(video)]
    assert result.timeline is not None
    timeline = json.loads(Path(result.timeline).read_text())
    digest = store.video_hash(video)
    arrays: dict[str, np.ndarray] = {}
    for tool in ("embedder", "actions"):
        (key,) = [k for k in store.keys(tool) if store.get(k).meta.video_hash == digest]  # type: ignore[union-attr]
        hit = store.get(key)
        assert hit is not None
        arrays.update({f"{tool}.{n}": a for n, a in hit.arrays().items()})
    return timeline, arrays


def test_a_video_alone_and_with_others_agrees_within_the_bound(
    models: dict[str, str],
    h264_video: SyntheticVideo,
    vp9_video: SyntheticVideo,
    multi_cut_video: SyntheticVideo,
    tmp_path: Path,
) -> None:
    cut = h264_video.path
    short = write_video(tmp_path / "short.mp4", seconds=2, fps=10, cuts=[7]).path
    alone, alone_arrays = perceived(models, [cut], cut, tmp_path / "alone")
    # after a 2 s video: on the 2-core test machine this batch gives cut.mp4 other last bits
    # (exact comparison fails there); with the two other test videos, as tests/test_ray_perceive
    for i, others in enumerate([[short], [vp9_video.path, multi_cut_video.path]]):
        timeline, arrays = perceived(models, [*others, cut], cut, tmp_path / f"with{i}")
        assert_timelines_close(timeline, alone)
        assert arrays.keys() == alone_arrays.keys()
        for name, array in arrays.items():
            np.testing.assert_allclose(
                array, alone_arrays[name], rtol=RTOL, atol=ATOL, err_msg=name
            )


def test_the_comparison_allows_rounding_and_nothing_else() -> None:
    want = {
        "segments": [
            {"captions": [{"text": "a cup"}], "actions": [{"verb": "take", "score": 0.00123}]},
            {"captions": [{"text": "a door"}], "actions": [{"verb": "open", "score": 0.5}]},
        ]
    }
    rounded = copy.deepcopy(want)
    rounded["segments"][0]["actions"][0]["score"] *= 1 + 2e-6  # as measured between batches
    rounded["segments"][1]["actions"][0]["score"] += 1.9e-9
    assert rounded != want  # what the exact comparison of tests/test_ray_perceive.py tripped on
    assert float_diffs(rounded, want) == []
    for path, value in [
        (("segments", 0, "actions", 0, "score"), 0.00123 * (1 + 1e-3)),
        (("segments", 1, "actions", 0, "verb"), "close"),
        (("segments", 0, "captions", 0, "text"), "a cap"),
    ]:
        wrong = copy.deepcopy(want)
        node: Any = wrong
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value
        assert len(float_diffs(wrong, want)) == 1, path
    shorter = copy.deepcopy(want)
    shorter["segments"].pop()
    assert float_diffs(shorter, want) == ["$.segments: 1 items != 2"]
