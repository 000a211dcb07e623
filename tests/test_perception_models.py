"""Model loading, device/dtype choice and OOM back-off (tools/models.py)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from vidagent.core.errors import ConfigError
from vidagent.testing.tiny_models import build_tiny
from vidagent.tools.models import (
    AdaptiveBatch,
    ModelLoadError,
    ModelRunError,
    is_oom,
    load_model,
    looks_like_path,
    model_fingerprint,
    resolve_device,
    resolve_dtype,
)


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny("clip", tmp_path_factory.getbasetemp() / "tiny-models")


class FakeGpuModel:
    """Doubles its inputs, and runs out of memory on batches larger than ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.batches: list[int] = []

    def __call__(self, batch: Sequence[int]) -> list[int]:
        self.batches.append(len(batch))
        if len(batch) > self.limit:
            raise torch.cuda.OutOfMemoryError(
                f"CUDA out of memory. Tried to allocate {len(batch)} GiB"
            )
        return [2 * x for x in batch]


def test_oom_halves_the_batch_and_keeps_order_and_the_smaller_size() -> None:
    model = FakeGpuModel(limit=3)
    batcher = AdaptiveBatch(16, what="fake")
    assert batcher.map(model, list(range(20))) == [2 * x for x in range(20)]
    # 16 (OOM) -> 8 (OOM) -> 4 (OOM) -> 2, then 2 at a time to the end
    assert model.batches[:4] == [16, 8, 4, 2]
    assert set(model.batches[3:]) == {2}
    assert batcher.size == 2 and batcher.halvings == 3
    model.batches.clear()
    assert batcher.map(model, [1, 2, 3]) == [2, 4, 6]
    assert model.batches == [2, 1]  # the halved size is remembered for the next call


def test_oom_at_batch_size_one_is_a_model_error() -> None:
    with pytest.raises(ModelRunError, match="out of GPU memory even at batch size 1"):
        AdaptiveBatch(4, what="fake").map(FakeGpuModel(limit=0), [1, 2])


def test_other_errors_and_wrong_result_counts_are_not_retried() -> None:
    calls = []

    def broken(batch: Sequence[int]) -> list[int]:
        calls.append(len(batch))
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        AdaptiveBatch(8).map(broken, [1, 2, 3])
    assert calls == [3]
    with pytest.raises(ModelRunError, match="1 results for a batch of 3"):
        AdaptiveBatch(8).map(lambda b: [0], [1, 2, 3])
    with pytest.raises(ConfigError):
        AdaptiveBatch(0)


def test_is_oom_recognizes_type_and_message() -> None:
    assert is_oom(torch.cuda.OutOfMemoryError("x"))
    assert is_oom(RuntimeError("CUDA error: out of memory"))
    assert not is_oom(RuntimeError("shape mismatch"))
    assert not is_oom(ValueError("out of memory"))


def test_device_and_dtype_choice_on_a_cpu_machine() -> None:
    assert not torch.cuda.is_available()  # this test documents the CPU branch
    assert resolve_device("auto") == "cpu"
    assert resolve_device("CPU") == "cpu"
    assert resolve_dtype("auto", "cpu") == "float32"
    assert resolve_dtype("bfloat16", "cpu") == "bfloat16"
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match="unknown device 'tpu'"):
        resolve_device("tpu")


def test_cuda_dtype_prefers_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_dtype("auto", "cuda") == "bfloat16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_dtype("auto", "cuda:1") == "float16"


def test_missing_hub_model_offline_is_one_fast_clear_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoProcessor  # import time is not what is measured

    assert AutoModel and AutoProcessor
    start = time.perf_counter()
    with pytest.raises(ModelLoadError) as info:
        load_model("vidagent-test/no-such-model", "dual-encoder")
    assert time.perf_counter() - start < 2  # no retries against an unreachable hub
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("cannot load model 'vidagent-test/no-such-model': not found locally")
    assert "huggingface-cli download vidagent-test/no-such-model" in msg
    assert "HF_HOME" in msg


def test_missing_or_unusable_local_folders(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"cannot load model '.*/nope': no such folder"):
        load_model(str(tmp_path / "nope"), "image-text-to-text")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="not a usable checkpoint for this tool"):
        load_model(str(tmp_path / "empty"), "image-text-to-text")


def test_a_captioner_is_not_an_embedding_model(clip_dir: Path, tmp_path: Path) -> None:
    blip = build_tiny("blip", clip_dir.parent)
    # AutoModel gives a BlipModel (it has get_image_features) whose contrastive weights are not
    # in a captioning checkpoint: transformers would fill them with random numbers and warn.
    with pytest.raises(ModelLoadError, match=r"weights are missing from the checkpoint"):
        load_model(str(blip), "dual-encoder")
    clip = build_tiny("clip", clip_dir.parent)
    with pytest.raises(ModelLoadError, match="AutoModelForImageTextToText"):
        load_model(str(clip), "image-text-to-text")


def test_loaded_models_are_shared_and_in_eval_mode(clip_dir: Path) -> None:
    a = load_model(str(clip_dir), "dual-encoder", device="cpu")
    b = load_model(str(clip_dir), "dual-encoder", device="auto")
    assert a is b
    assert not a.model.training
    assert a.dtype == "float32" and next(a.model.parameters()).dtype == torch.float32


def test_paths_and_hub_ids_are_told_apart(tmp_path: Path) -> None:
    assert not looks_like_path("openai/clip-vit-large-patch14")
    assert not looks_like_path("bert-base-uncased")
    for p in ("./models/clip", "/models/clip", "~/clip", "a/b/c", str(tmp_path)):
        assert looks_like_path(p), p


def test_fingerprints_follow_local_weights_not_names(clip_dir: Path, tmp_path: Path) -> None:
    assert model_fingerprint("openai/clip-vit-base-patch16") == "openai/clip-vit-base-patch16"
    assert model_fingerprint("org/m", "v2") == "org/m@v2"
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"weights-1")
    first = model_fingerprint(str(folder))
    assert first.startswith("local:")
    (folder / "model.safetensors").write_bytes(b"weights-2")
    assert model_fingerprint(str(folder)) != first
    seen: list[str] = []
    model_fingerprint(str(folder), hasher=lambda p: seen.append(p.name) or "x")
    assert sorted(seen) == ["config.json", "model.safetensors"]


def test_real_embedder_survives_oom_with_same_results(
    clip_dir: Path, h264_video: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real CLIP whose image tower 'runs out of memory' above 2 images: same vectors."""
    from vidagent.tools.sampling import sample_segments
    from vidagent.tools.segmenter import build_timeline
    from vidagent.tools.video import open_video
    from vidagent.tools.visual_embedder import EmbedderParams, SegmentEmbedder

    path = h264_video.path  # type: ignore[attr-defined]
    timeline = build_timeline(path, seconds=2.0)
    with open_video(path) as source:
        frames = sample_segments(source, timeline.segments, 4)
    reference = SegmentEmbedder(EmbedderParams(model=str(clip_dir), batch_size=1))
    expected = reference.embed_segments(frames)

    model = load_model(str(clip_dir), "dual-encoder").model
    real = model.get_image_features
    sizes: list[int] = []

    def limited(pixel_values: torch.Tensor, **kw: object) -> object:
        sizes.append(pixel_values.shape[0])
        if pixel_values.shape[0] > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(pixel_values=pixel_values, **kw)

    monkeypatch.setattr(model, "get_image_features", limited)
    embedder = SegmentEmbedder(EmbedderParams(model=str(clip_dir), batch_size=8))
    got = embedder.embed_segments(frames)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert sizes[:3] == [8, 4, 2] and embedder.encoder.batch.size == 2
