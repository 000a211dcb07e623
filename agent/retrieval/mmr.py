"""Maximal marginal relevance (Carbonell & Goldstein, 1998) over a small candidate set, in numpy.

LALM/PALM pick in-context examples for Ego4D anticipation this way: fetch the ``fetch_k`` nearest
examples, then greedily add the candidate that maximizes

    λ · sim(q, d_i) − (1 − λ) · max_{j ∈ S} sim(d_i, d_j)

where S is the set already selected, so the examples are relevant to the query but not copies of
each other. λ = 1 is plain top-k by similarity, λ = 0 is pure diversity.

Conventions (shared with the brute-force reference in the tests): the redundancy term of an empty
S is 0, so the first pick is the most query-similar candidate; exact ties are broken by higher
query similarity, then by lower candidate index. The pairwise similarity matrix is computed once
(``fetch_k`` is tens of candidates, so it is tiny) and the running ``max_{j ∈ S}`` is updated with
one vector maximum per pick: O(fetch_k · k) after one small matrix product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vidagent.core.errors import ConfigError


@dataclass(frozen=True)
class MMRSelection:
    """Positions of the picked candidates, in pick order, and the MMR score each had when picked."""

    indices: np.ndarray
    scores: np.ndarray


def check_lambda(lambda_: float) -> float:
    """Validate λ (a user option) and return it as a float."""
    if not 0.0 <= float(lambda_) <= 1.0:
        raise ConfigError(f"MMR lambda must be between 0 and 1, got {lambda_}")
    return float(lambda_)


def mmr_select(
    query_sims: np.ndarray,
    pairwise_sims: np.ndarray,
    k: int,
    lambda_: float = 0.5,
) -> MMRSelection:
    """Greedy MMR from precomputed similarities.

    ``query_sims[i]`` is sim(q, d_i); ``pairwise_sims[i, j]`` is sim(d_i, d_j). Returns at most
    ``min(k, n)`` picks.
    """
    lam = check_lambda(lambda_)
    q = np.asarray(query_sims, dtype=np.float64).ravel()
    n = q.shape[0]
    pair = np.asarray(pairwise_sims, dtype=np.float64)
    if pair.shape != (n, n):
        raise ValueError(f"pairwise_sims must have shape ({n}, {n}), got {pair.shape}")
    k = min(int(k), n)
    if k < 0:
        raise ConfigError(f"k must not be negative, got {k}")
    relevance = lam * q
    redundancy = np.zeros(n, dtype=np.float64)
    available = np.ones(n, dtype=bool)
    picked = np.empty(k, dtype=np.int64)
    scores = np.empty(k, dtype=np.float64)
    for step in range(k):
        score = relevance - (1.0 - lam) * redundancy
        score[~available] = -np.inf
        best = float(score.max())
        tied = np.flatnonzero(score == best)
        choice = int(tied[np.argmax(q[tied])]) if tied.size > 1 else int(tied[0])
        picked[step] = choice
        scores[step] = best
        available[choice] = False
        # max over S of sim(d_i, d_j); the first pick replaces the empty-set value 0.
        redundancy = (
            pair[:, choice].copy() if step == 0 else np.maximum(redundancy, pair[:, choice])
        )
    return MMRSelection(indices=picked, scores=scores)


def mmr(
    query: np.ndarray,
    candidates: np.ndarray,
    k: int,
    lambda_: float = 0.5,
) -> MMRSelection:
    """MMR with inner-product similarity: ``query`` (d,) against ``candidates`` (n, d).

    For normalized vectors inner product is cosine similarity, the metric the bank uses.
    """
    cand = np.asarray(candidates, dtype=np.float32)
    if cand.ndim != 2:
        raise ValueError(f"candidates must be a 2-d array, got shape {cand.shape}")
    qv = np.asarray(query, dtype=np.float32).ravel()
    return mmr_select(cand @ qv, cand @ cand.T, k, lambda_)
