"""The example bank on real FAISS: leakage, duplicates, manifest checks, persistence, recall."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vidagent.core.errors import ConfigError
from vidagent.retrieval import (
    BankFormatError,
    Example,
    ExampleBank,
    IndexMismatchError,
    IndexParams,
    select_examples,
)
from vidagent.retrieval.faiss_index import num_gpus

INDEX_TYPES = ["flat", "hnsw", "ivf"]


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def _random_bank(
    n: int = 400, dim: int = 32, videos: int = 40, index_type: str = "flat", seed: int = 0
) -> tuple[ExampleBank, np.ndarray]:
    rng = np.random.default_rng(seed)
    vectors = _unit(rng.normal(size=(n, dim)))
    examples = [
        Example(
            task="lta" if i % 4 else "qa",
            input=f"input {i}",
            target=f"target {i}",
            video_id=f"video{i % videos}",
            clip_id=f"clip{i % (2 * videos)}",
            key=f"k{i}",
        )
        for i in range(n)
    ]
    bank = ExampleBank.from_vectors(
        examples,
        vectors,
        embedder_id="test-embedder",
        index_type=index_type,  # type: ignore[arg-type]
    )
    return bank, vectors


class StubEmbedder:
    """Only its id and dimension matter to the manifest check."""

    def __init__(self, id: str, dim: int) -> None:
        self.id, self.dim = id, dim

    def embed(self, texts: list[str]) -> np.ndarray:
        return _unit(np.ones((len(texts), self.dim)))


@pytest.mark.parametrize("index_type", INDEX_TYPES)
@pytest.mark.parametrize("strategy", ["mmr", "topk", "random"])
def test_own_video_is_never_returned_even_when_nearest(index_type: str, strategy: str) -> None:
    bank, vectors = _random_bank(index_type=index_type)
    for row in range(0, 400, 37):
        own = bank.examples[row].video_id
        query = vectors[row]  # the query IS an example of its own video
        unfiltered = select_examples(bank, query, 8, strategy="topk")
        assert unfiltered[0].id == row  # so the exclusion below has something to remove
        picked = select_examples(bank, query, 8, strategy=strategy, exclude_sources={own}, seed=1)
        assert len(picked) == 8
        assert all(s.example.video_id != own for s in picked)
        # Excluding by clip id works the same way.
        clip = bank.examples[row].clip_id
        assert clip is not None
        by_clip = select_examples(bank, query, 8, strategy=strategy, exclude_sources={clip})
        assert all(s.example.clip_id != clip for s in by_clip)


def test_exclusion_fetches_beyond_fetch_k_and_keeps_exact_order() -> None:
    """50 near-copies of the query from its own video fill the first fetch_k results."""
    rng = np.random.default_rng(3)
    query = _unit(rng.normal(size=(1, 16)))[0]
    own = _unit(query + rng.normal(0, 0.01, size=(50, 16)))
    others = _unit(rng.normal(size=(300, 16)))
    vectors = np.vstack([own, others])
    examples = [
        Example(task="t", input=f"i{i}", target="t", video_id="own" if i < 50 else f"v{i}")
        for i in range(350)
    ]
    for index_type in INDEX_TYPES:
        bank = ExampleBank.from_vectors(
            examples,
            vectors,
            embedder_id="e",
            index_type=index_type,  # type: ignore[arg-type]
        )
        topk = select_examples(bank, query, 8, strategy="topk", exclude_sources={"own"})
        expected = 50 + np.argsort(-(others @ query))[:8]
        assert [s.id for s in topk] == expected.tolist(), index_type
        picked = select_examples(bank, query, 8, fetch_k=20, exclude_sources={"own"})
        assert len(picked) == 8 and all(s.id >= 50 for s in picked)


def test_approximate_index_falls_back_to_exact_when_almost_everything_is_excluded() -> None:
    bank, vectors = _random_bank(n=2000, videos=1000, index_type="hnsw")
    allowed = {f"video{i}" for i in range(5)}  # 10 eligible examples out of 2000
    excluded = {e.video_id for e in bank.examples} - allowed
    picked = select_examples(bank, vectors[0], 8, strategy="topk", exclude_sources=excluded)
    eligible = [i for i, e in enumerate(bank.examples) if e.video_id in allowed]
    order = sorted(eligible, key=lambda i: -float(vectors[i] @ vectors[0]))[:8]
    assert [s.id for s in picked] == order


@pytest.mark.parametrize("strategy", ["mmr", "topk", "random"])
def test_duplicates_are_not_picked_twice(strategy: str) -> None:
    """The same input/target stored three times (any video) is selected at most once."""
    bank, vectors = _random_bank(n=100)
    dup = bank.examples[0]
    copies = [dup.model_copy(update={"video_id": f"copy{j}", "key": f"c{j}"}) for j in range(3)]
    examples = [*bank.examples, *copies]
    all_vectors = np.vstack([vectors, np.repeat(vectors[:1], 3, axis=0)])
    bank = ExampleBank.from_vectors(examples, all_vectors, embedder_id="e")
    for seed in range(20):
        picked = select_examples(
            bank, vectors[0], 30, strategy=strategy, lambda_=1.0, fetch_k=40, seed=seed
        )
        keys = [(s.example.input, s.example.target) for s in picked]
        assert len(keys) == len(set(keys)) == 30
    # Excluding the first copy's video still lets one other copy through.
    picked = select_examples(bank, vectors[0], 5, strategy="topk", exclude_sources={"video0"})
    assert picked[0].example.input == dup.input and picked[0].example.video_id.startswith("copy")
    assert sum(s.example.input == dup.input for s in picked) == 1


def test_task_filter_and_short_banks() -> None:
    bank, vectors = _random_bank(n=200)
    qa = select_examples(bank, vectors[1], 8, strategy="mmr", task="qa")
    assert len(qa) == 8 and all(s.example.task == "qa" for s in qa)
    assert select_examples(bank, vectors[1], 8, task="no-such-task") == []
    small, small_vectors = _random_bank(n=5, videos=5)
    got = select_examples(small, small_vectors[0], 8, exclude_sources={"video0"})
    assert sorted(s.id for s in got) == [1, 2, 3, 4]


def test_random_is_seeded_and_uniform_enough() -> None:
    bank, vectors = _random_bank(n=400)
    a = select_examples(bank, vectors[0], 8, strategy="random", seed=5)
    b = select_examples(bank, vectors[0], 8, strategy="random", seed=5)
    c = select_examples(bank, vectors[0], 8, strategy="random", seed=6)
    assert [s.id for s in a] == [s.id for s in b] != [s.id for s in c]
    counts = np.zeros(400)
    for seed in range(500):
        for s in select_examples(bank, vectors[0], 8, strategy="random", seed=seed):
            counts[s.id] += 1
            assert s.similarity == pytest.approx(float(vectors[s.id] @ vectors[0]), abs=1e-5)
    assert counts.min() > 0 and counts.max() < 40  # expectation 10 per row


def test_bad_selection_options_are_config_errors() -> None:
    bank, vectors = _random_bank(n=50)
    for kwargs in ({"k": 0}, {"fetch_k": 0}, {"lambda_": -0.1}, {"strategy": "best"}):
        with pytest.raises(ConfigError):
            select_examples(bank, vectors[0], **{"k": 4, **kwargs})  # type: ignore[arg-type]
    with pytest.raises(IndexMismatchError, match="dimension 16"):
        select_examples(bank, np.ones(16, dtype=np.float32), 4)
    with pytest.raises(ConfigError, match="without an embedder"):
        select_examples(bank, "a text query", 4)


@pytest.mark.parametrize("index_type", INDEX_TYPES)
def test_save_load_round_trip_gives_identical_results(tmp_path: Path, index_type: str) -> None:
    bank, vectors = _random_bank(n=600, index_type=index_type)
    bank.save(tmp_path / "bank")
    loaded = ExampleBank.load(tmp_path / "bank")
    assert loaded.examples == bank.examples
    assert loaded.manifest == bank.manifest
    assert loaded.manifest.index.type == index_type
    for row in range(0, 600, 50):
        for strategy in ("mmr", "topk", "random"):
            kwargs = {"strategy": strategy, "exclude_sources": {"video3"}, "seed": row}
            before = select_examples(bank, vectors[row], 8, **kwargs)  # type: ignore[arg-type]
            after = select_examples(loaded, vectors[row], 8, **kwargs)  # type: ignore[arg-type]
            assert before == after
    np.testing.assert_array_equal(loaded.vectors(np.arange(10)), bank.vectors(np.arange(10)))
    np.testing.assert_allclose(loaded.vectors(np.arange(10)), vectors[:10], atol=1e-6)


def test_manifest_records_what_was_built(tmp_path: Path) -> None:
    bank, _ = _random_bank(n=100, dim=24)
    bank.save(tmp_path / "b")
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["format"] == "vidagent-example-bank" and manifest["format_version"] == 1
    assert manifest["embedder"] == "test-embedder" and manifest["dim"] == 24
    assert manifest["metric"] == "inner_product" and manifest["count"] == 100
    assert manifest["tasks"] == {"qa": 25, "lta": 75}
    assert manifest["index"]["type"] == "flat"
    with pytest.raises(BankFormatError, match="already holds"):
        bank.save(tmp_path / "b")
    bank.save(tmp_path / "b", overwrite=True)


def test_bank_of_another_embedder_is_refused(tmp_path: Path) -> None:
    bank, _ = _random_bank(n=50, dim=32)
    bank.save(tmp_path / "b")
    with pytest.raises(IndexMismatchError, match=r"built with embedder 'test-embedder'.*'other'"):
        ExampleBank.load(tmp_path / "b", StubEmbedder("other", 32))
    with pytest.raises(IndexMismatchError, match=r"dimension 32.*768-d"):
        ExampleBank.load(tmp_path / "b", StubEmbedder("test-embedder", 768))
    loaded = ExampleBank.load(tmp_path / "b", StubEmbedder("test-embedder", 32))
    assert len(select_examples(loaded, "any text", 3)) == 3


def _saved(tmp_path: Path) -> Path:
    bank, _ = _random_bank(n=60, dim=8, index_type="hnsw")
    return bank.save(tmp_path / "bank")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "manifest.json").unlink(), "no manifest.json"),
        (lambda d: (d / "manifest.json").write_text("{not json"), "not valid JSON"),
        (lambda d: (d / "manifest.json").write_text('{"format": "x"}'), "not a vidagent-"),
        (lambda d: _edit_manifest(d, count=61), "disagree with the manifest.*61"),
        (lambda d: _edit_manifest(d, dim=16), "disagree with the manifest.*dimension 8"),
        (lambda d: _edit_manifest(d, format_version=2), "newer than this vidagent"),
        (lambda d: _edit_manifest(d, dim="wide"), "corrupt: dim"),
        (lambda d: _edit_manifest(d, index={"type": "flat"}), "index type hnsw"),
        (lambda d: _truncate(d / "index.faiss"), "index.faiss is unreadable"),
        (lambda d: (d / "index.faiss").unlink(), "no index.faiss"),
        (lambda d: _truncate(d / "examples.jsonl"), "examples.jsonl does not match"),
        (lambda d: (d / "examples.jsonl").unlink(), "cannot read examples.jsonl"),
    ],
)
def test_corrupt_or_incomplete_bank_is_a_clear_error(tmp_path: Path, damage, message) -> None:  # type: ignore[no-untyped-def]
    directory = _saved(tmp_path)
    ExampleBank.load(directory)  # intact: loads
    damage(directory)
    with pytest.raises(BankFormatError, match=message) as info:
        ExampleBank.load(directory)
    assert str(directory) in str(info.value) and "\n" not in str(info.value)


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BankFormatError, match="no such directory"):
        ExampleBank.load(tmp_path / "nothing")


def _edit_manifest(directory: Path, **changes: object) -> None:
    file = directory / "manifest.json"
    file.write_text(json.dumps(json.loads(file.read_text()) | changes))


def _truncate(file: Path) -> None:
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])


def _clustered(n: int, dim: int, clusters: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, dim))
    labels = rng.integers(0, clusters, size=n)
    return _unit(centers[labels] + rng.normal(0, 0.35, size=(n, dim)))


@pytest.mark.parametrize(("index_type", "threshold"), [("hnsw", 0.95), ("ivf", 0.9)])
def test_approximate_recall_at_10_on_clustered_vectors(index_type: str, threshold: float) -> None:
    data = _clustered(10_000, 64, 100, seed=1)
    queries = _clustered(200, 64, 100, seed=1)  # same centres, fresh noise
    examples = [Example(task="t", input=str(i), target="", video_id=str(i)) for i in range(10_000)]
    exact = ExampleBank.from_vectors(examples, data, embedder_id="e")
    approx = ExampleBank.from_vectors(
        examples,
        data,
        embedder_id="e",
        index_type=index_type,  # type: ignore[arg-type]
    )
    hits = 0
    for query in queries:
        _, truth = exact.search(query, 10)
        _, found = approx.search(query, 10)
        hits += len(set(truth.tolist()) & set(found.tolist()))
    assert hits / (10 * len(queries)) >= threshold


def test_gpu_request_without_gpu_is_a_clear_error() -> None:
    if num_gpus() > 0:
        pytest.skip("not applicable here: faiss sees a GPU; the guard only applies without one")
    vectors = _unit(np.random.default_rng(0).normal(size=(10, 8)))
    examples = [Example(task="t", input=str(i), target="", video_id="v") for i in range(10)]
    with pytest.raises(ConfigError, match="faiss sees no GPU"):
        ExampleBank.from_vectors(examples, vectors, embedder_id="e", gpu=True)
    bank = ExampleBank.from_vectors(examples, vectors, embedder_id="e", gpu=None)  # auto: CPU
    assert len(bank.search(vectors[0], 3)[1]) == 3


def test_invalid_inputs_to_from_vectors() -> None:
    example = Example(task="t", input="a", target="b", video_id="v")
    with pytest.raises(ConfigError, match="shape"):
        ExampleBank.from_vectors([example], np.ones((2, 4)), embedder_id="e")
    with pytest.raises(ConfigError, match="empty"):
        ExampleBank.from_vectors([], np.ones((0, 4)), embedder_id="e")
    with pytest.raises(ConfigError, match="NaN"):
        ExampleBank.from_vectors([example], np.full((1, 4), np.nan), embedder_id="e")
    params = IndexParams(hnsw_ef_search=8)
    bank = ExampleBank.from_vectors(
        [example], np.ones((1, 4)), embedder_id="e", index_type="hnsw", index_params=params
    )
    assert bank.manifest.index.hnsw_ef_search == 8 and bank.manifest.index.type == "hnsw"
    bank.tune(ef_search=100)
    assert bank.manifest.index.hnsw_ef_search == 100
