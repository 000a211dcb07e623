"""The perception pipeline (tools/perceive.py): store keys, cache hits, batching, failures."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vidagent.core.errors import VideoError
from vidagent.core.records import Timeline
from vidagent.store.perception import PerceptionStore
from vidagent.testing.synth import SyntheticVideo, write_video
from vidagent.testing.tiny_models import build_tiny
from vidagent.tools.actions import ActionParams, ActionRecognizer
from vidagent.tools.captioner import Captioner, CaptionerParams
from vidagent.tools.models import ModelLoadError, ToolOutput, ToolParams
from vidagent.tools.perceive import ProgressEvent, output_names, perceive, perceive_many
from vidagent.tools.video import FrameBatch
from vidagent.tools.visual_embedder import EmbedderParams, SegmentEmbedder


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.getbasetemp() / "tiny-models"
    return {k: str(build_tiny(k, root)) for k in ("clip", "blip")}


@pytest.fixture
def store(tmp_path: Path) -> PerceptionStore:
    return PerceptionStore(tmp_path / "store")


@pytest.fixture(scope="module")
def corrupt(tmp_path_factory: pytest.TempPathFactory, h264_video: SyntheticVideo) -> Path:
    path = tmp_path_factory.mktemp("bad") / "truncated.mp4"
    path.write_bytes(h264_video.path.read_bytes()[:2500])
    return path


def make_tools(models: dict[str, str], store: PerceptionStore, **actions: Any) -> list[Any]:
    return [
        Captioner(CaptionerParams(model=models["blip"], max_new_tokens=5)),
        SegmentEmbedder(EmbedderParams(model=models["clip"])),
        ActionRecognizer(
            ActionParams(**{"model": models["clip"], "top_k": 2, **actions}), store=store
        ),
    ]


def test_perceive_many_writes_timelines_and_records_failures(
    models: dict[str, str],
    store: PerceptionStore,
    h264_video: SyntheticVideo,
    vp9_video: SyntheticVideo,
    corrupt: Path,
    tmp_path: Path,
) -> None:
    tools_ = make_tools(models, store)
    events: list[ProgressEvent] = []
    paths = [h264_video.path, corrupt, vp9_video.path]
    summary = perceive_many(
        paths, tools=tools_, store=store, out_dir=tmp_path / "out", progress=events.append
    )
    assert [r.status for r in summary.results] == ["ok", "failed", "ok"]
    bad = summary.results[1]
    assert bad.error is not None and "CorruptVideoError" in bad.error and str(corrupt) in bad.error
    assert summary.count("ok") == 2 and summary.failed == [bad]

    # both inputs are named cut.*: their timelines get distinct names
    written = [Path(r.timeline) for r in summary.results if r.timeline]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in written)
    assert len(set(written)) == 2 and all(p.name.startswith("cut-") for p in written)
    timeline = Timeline.model_validate_json(written[0].read_text())
    assert len(timeline.segments) == 4
    assert timeline.video.content_hash == store.video_hash(h264_video.path)
    for seg in timeline.segments:
        assert len(seg.captions) == 1 and seg.captions[0].model == models["blip"]
        assert len(seg.actions) == 2 and seg.actions[0].score >= seg.actions[1].score
        assert seg.embedding is not None and seg.embedding.row == seg.index
    ref = timeline.segments[2].embedding
    assert ref is not None
    stored = store.get(ref.key)
    assert stored is not None and stored.meta.tool == "embedder"
    vectors = stored.array("embeddings")
    assert vectors.shape == (4, ref.dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    actions = store.get(timeline_key(store, "actions", h264_video.path))
    assert actions is not None and actions.array("verb_probs").shape == (4, 34)
    assert len(Timeline.model_validate_json(written[1].read_text()).segments) == 2  # 3 s VP9
    kinds = [e.kind for e in events]
    assert kinds.count("video") == 3 and "planned" in kinds and "segments" in kinds
    done = sum(e.count for e in events if e.kind == "segments")
    assert done == sum(e.count for e in events if e.kind == "planned") == 3 * (4 + 2)


def timeline_key(store: PerceptionStore, tool: str, video: Path) -> str:
    """The store key of ``tool``'s result for ``video`` (the only one in a fresh store)."""
    keys = [k for k in store.keys(tool) if store.get(k).meta.video_hash == store.video_hash(video)]  # type: ignore[union-attr]
    assert len(keys) == 1
    return keys[0]


def test_second_run_does_no_model_work(
    models: dict[str, str],
    store: PerceptionStore,
    h264_video: SyntheticVideo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = perceive(h264_video.path, tools=make_tools(models, store), store=store)

    def no_loading(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was loaded on a cached run")

    monkeypatch.setattr("vidagent.tools.models.load_model", no_loading)
    monkeypatch.setattr("vidagent.tools.visual_embedder.load_model", no_loading)
    monkeypatch.setattr("vidagent.tools.captioner.load_model", no_loading)
    copy = tmp_path / "renamed.mp4"  # same bytes at another path: same content hash
    copy.write_bytes(h264_video.path.read_bytes())
    again = make_tools(models, store)
    summary = perceive_many([copy], tools=again, store=store, out_dir=tmp_path / "out")
    assert summary.results[0].status == "cached"
    assert summary.results[0].cached == ["captioner", "embedder", "actions"]
    assert again[0].generate_calls == 0 and again[1].encoder.forward_calls == 0
    second = Timeline.model_validate_json((tmp_path / "out" / "renamed.json").read_text())
    assert second.segments == first.segments
    assert second.video.path == str(copy)


def test_changing_a_param_recomputes_only_that_tool(
    models: dict[str, str], store: PerceptionStore, h264_video: SyntheticVideo
) -> None:
    perceive(h264_video.path, tools=make_tools(models, store), store=store)
    changed = make_tools(models, store, top_k=3)
    summary = perceive_many([h264_video.path], tools=changed, store=store, out_dir=None)
    result = summary.results[0]
    assert result.status == "ok" and result.computed == ["actions"]
    assert result.cached == ["captioner", "embedder"]
    # the embedder was cached, so the recognizer encoded the frames itself
    assert changed[2].encoder.forward_calls > 0 and changed[1].encoder.forward_calls == 0
    other_segments = perceive_many(
        [h264_video.path], tools=make_tools(models, store), store=store, out_dir=None, seconds=4.0
    )
    assert other_segments.results[0].computed == ["captioner", "embedder", "actions"]


def test_batches_span_videos_and_shared_encoder_runs_once(
    models: dict[str, str], store: PerceptionStore, tmp_path: Path
) -> None:
    videos = [
        write_video(tmp_path / f"short{i}.mp4", seconds=2, fps=10, cuts=[7]).path for i in range(3)
    ]
    tools_ = make_tools(models, store)

    def no_image_pass(images: object) -> None:
        raise AssertionError("actions encoded images although the embedder had")

    tools_[2].encoder.encode_images = no_image_pass
    summary = perceive_many(videos, tools=tools_, store=store, out_dir=None, chunk_segments=64)
    assert [r.status for r in summary.results] == ["ok"] * 3
    assert tools_[0].generate_calls == 1  # 3 videos x 1 segment in one caption batch
    assert tools_[1].encoder.forward_calls == 1  # 3 segments x 4 frames in one batch of 32
    assert all(r.computed == ["captioner", "embedder", "actions"] for r in summary.results)


class PickyTool:
    """A tool that fails on frames of one size: the pipeline must isolate that video."""

    name = "picky"
    version = "1"

    def __init__(self, bad_width: int) -> None:
        self.params = ToolParams()
        self.bad_width = bad_width
        self.batches: list[int] = []

    def cache_params(self, hasher: Any = None) -> dict[str, Any]:
        return {"bad_width": self.bad_width}

    def setup(self) -> None:
        pass

    def run(self, frames: Sequence[FrameBatch]) -> ToolOutput:
        self.batches.append(len(frames))
        if any(fb.frames.shape[2] == self.bad_width for fb in frames):
            raise RuntimeError(f"cannot handle width {self.bad_width}")
        return ToolOutput([fb.frames.shape[2] for fb in frames])

    def summary(self, output: ToolOutput) -> dict[str, Any]:
        return {}

    def annotate(self, segments: Sequence[Any], value: dict[str, Any], key: str) -> list[Any]:
        return list(segments)


def test_a_batch_failure_is_pinned_on_the_video_that_caused_it(
    store: PerceptionStore, tmp_path: Path
) -> None:
    good = write_video(tmp_path / "good.mp4", seconds=2, fps=10, width=160, height=120).path
    odd = write_video(tmp_path / "odd.mp4", seconds=2, fps=10, width=96, height=64).path
    tool = PickyTool(bad_width=96)
    summary = perceive_many([good, odd], tools=[tool], store=store, out_dir=tmp_path / "out")
    assert [r.status for r in summary.results] == ["ok", "failed"]
    assert summary.results[1].error == "RuntimeError: cannot handle width 96"
    assert tool.batches == [2, 1, 1]  # both videos together, then one by one
    assert (tmp_path / "out" / "good.json").exists() and not (
        tmp_path / "out" / "odd.json"
    ).exists()


def test_a_model_that_cannot_load_stops_the_run(
    store: PerceptionStore, h264_video: SyntheticVideo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tool = SegmentEmbedder(EmbedderParams(model="vidagent-test/missing-model"))
    with pytest.raises(ModelLoadError, match="vidagent-test/missing-model"):
        perceive_many([h264_video.path], tools=[tool], store=store, out_dir=None)


def test_shot_segmentation_is_cached_and_keys_follow_segments(
    models: dict[str, str], store: PerceptionStore, multi_cut_video: SyntheticVideo
) -> None:
    tools_ = [SegmentEmbedder(EmbedderParams(model=models["clip"], frames_per_segment=2))]
    timeline = perceive(
        multi_cut_video.path, tools=tools_, store=store, shots=True, shot_params={"max_seconds": 5}
    )
    starts = [s.start_frame for s in timeline.segments]
    assert {50, 130, 210} <= set(starts) and timeline.segmentation.method == "shots"
    assert store.keys("segmenter.shots")
    again = perceive_many(
        [multi_cut_video.path],
        tools=tools_,
        store=store,
        out_dir=None,
        shots=True,
        shot_params={"max_seconds": 5},
    )
    assert again.results[0].status == "cached"


def test_single_video_errors_are_raised(
    models: dict[str, str], store: PerceptionStore, corrupt: Path
) -> None:
    with pytest.raises(VideoError, match=r"truncated\.mp4"):
        perceive(corrupt, tools=make_tools(models, store), store=store)


def test_output_names_stay_apart() -> None:
    names = output_names([Path("a/clip.mp4"), Path("b/clip.mp4"), Path("c/other.webm")])
    assert names[2] == "other.json"
    assert names[0] != names[1] and all(n.startswith("clip-") for n in names[:2])
    assert output_names([Path("a/clip.mp4")]) == ["clip.json"]
