"""MMR against a literal, brute-force implementation of the formula.

argmax_i [λ·sim(q, d_i) − (1−λ)·max_{j∈S} sim(d_i, d_j)], max over an empty S is 0, exact ties go
to the higher query similarity, then the lower index.
"""

from __future__ import annotations

import numpy as np
import pytest

from vidagent.core.errors import ConfigError
from vidagent.retrieval import Example, ExampleBank, mmr, mmr_select, select_examples

LAMBDAS = [0.0, 0.25, 0.5, 0.7, 1.0]


def reference_mmr(qsim: list[float], pair: list[list[float]], k: int, lam: float) -> list[int]:
    """Greedy MMR written from the formula with Python sets and loops, no numpy."""
    remaining = set(range(len(qsim)))
    selected: list[int] = []
    while remaining and len(selected) < k:

        def score(i: int) -> float:
            redundancy = max((pair[i][j] for j in selected), default=0.0)
            return lam * qsim[i] - (1 - lam) * redundancy

        best = max(remaining, key=lambda i: (score(i), qsim[i], -i))
        selected.append(best)
        remaining.remove(best)
    return selected


def _random_problem(seed: int, n: int = 24, dim: int = 16) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    docs = rng.normal(size=(n, dim))
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    query = rng.normal(size=dim)
    return query / np.linalg.norm(query), docs


@pytest.mark.parametrize("lam", LAMBDAS)
def test_mmr_select_matches_brute_force(lam: float) -> None:
    for seed in range(60):
        query, docs = _random_problem(seed, n=5 + seed % 30)
        qsim, pair = docs @ query, docs @ docs.T
        k = 1 + seed % 10
        got = mmr_select(qsim, pair, k, lam)
        expected = reference_mmr(qsim.tolist(), pair.tolist(), k, lam)
        assert got.indices.tolist() == expected, (seed, lam)
        # The reported score is the formula's value at the time of each pick.
        for step, i in enumerate(expected):
            red = max((pair[i, j] for j in expected[:step]), default=0.0)
            assert got.scores[step] == pytest.approx(lam * qsim[i] - (1 - lam) * red, abs=1e-12)


def _score(qsim: np.ndarray, pair: np.ndarray, lam: float, chosen: list[int], i: int) -> float:
    red = max((pair[i, j] for j in chosen), default=0.0)
    return float(lam * qsim[i] - (1 - lam) * red)


@pytest.mark.parametrize("lam", LAMBDAS)
def test_mmr_on_float32_vectors_matches_brute_force_up_to_ties(lam: float) -> None:
    """The vector entry point (float32 BLAS) agrees with float64 brute force except at near-ties."""
    for seed in range(40):
        query, docs = _random_problem(1000 + seed, n=32, dim=24)
        qsim, pair = docs @ query, docs @ docs.T
        got = mmr(query.astype(np.float32), docs.astype(np.float32), 8, lam).indices.tolist()
        expected = reference_mmr(qsim.tolist(), pair.tolist(), 8, lam)
        if got != expected:  # only acceptable if the first divergence is a numerical tie
            step = next(s for s, (a, b) in enumerate(zip(got, expected, strict=True)) if a != b)

            gap = _score(qsim, pair, lam, expected[:step], got[step]) - _score(
                qsim, pair, lam, expected[:step], expected[step]
            )
            assert abs(gap) < 1e-5, (seed, lam)


def test_lambda_one_is_top_k_and_lambda_zero_starts_with_the_nearest() -> None:
    for seed in range(30):
        query, docs = _random_problem(2000 + seed)
        qsim = docs @ query
        top = np.argsort(-qsim)[:8].tolist()
        assert mmr(query, docs, 8, 1.0).indices.tolist() == top
        diverse = mmr(query, docs, 8, 0.0).indices.tolist()
        assert diverse[0] == top[0]
        assert diverse != top  # pure diversity is not relevance order on random data


def test_mmr_spreads_over_clusters_where_top_k_does_not() -> None:
    """Two tight clusters near the query: top-k takes one cluster, MMR takes both."""
    rng = np.random.default_rng(7)
    base = np.eye(8)
    near = base[0] * 0.9 + base[1] * 0.44  # cluster A, closest to the query
    far = base[0] * 0.8 + base[2] * 0.6  # cluster B
    docs = np.vstack([near + rng.normal(0, 0.01, (5, 8)), far + rng.normal(0, 0.01, (5, 8))])
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    top = mmr(base[0], docs, 2, 1.0).indices
    picked = mmr(base[0], docs, 2, 0.5).indices
    assert set((top // 5).tolist()) == {0}
    assert set((picked // 5).tolist()) == {0, 1}


def test_k_larger_than_candidates_and_bad_lambda() -> None:
    query, docs = _random_problem(3, n=4)
    assert sorted(mmr(query, docs, 10, 0.5).indices.tolist()) == [0, 1, 2, 3]
    assert mmr(query, docs[:0], 3, 0.5).indices.size == 0
    with pytest.raises(ConfigError, match="lambda"):
        mmr(query, docs, 2, 1.5)


def test_bank_mmr_selection_matches_brute_force_over_fetched_candidates() -> None:
    """Through FAISS: select_examples(mmr) = brute-force MMR over the exact top fetch_k."""
    rng = np.random.default_rng(11)
    vectors = rng.normal(size=(500, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    examples = [
        Example(task="t", input=f"x{i}", target=f"y{i}", video_id=f"v{i}") for i in range(500)
    ]
    bank = ExampleBank.from_vectors(examples, vectors, embedder_id="test")
    for seed in range(20):
        query = rng.normal(size=32).astype(np.float32)
        query /= np.linalg.norm(query)
        for lam in LAMBDAS:
            got = select_examples(bank, query, 8, lambda_=lam, fetch_k=32)
            sims = vectors.astype(np.float64) @ query.astype(np.float64)
            pool = np.argsort(-sims)[:32]
            cand = vectors[pool].astype(np.float64)
            ref = reference_mmr((cand @ query).tolist(), (cand @ cand.T).tolist(), 8, lam)
            assert [s.id for s in got] == pool[ref].tolist(), (seed, lam)
            topk = select_examples(bank, query, 8, strategy="topk")
            if lam == 1.0:
                assert [s.id for s in got] == [s.id for s in topk]
