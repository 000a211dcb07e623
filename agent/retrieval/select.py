"""Choosing in-context examples from an :class:`~vidagent.retrieval.bank.ExampleBank`.

Strategies:

- ``mmr`` (default): fetch the ``fetch_k`` most similar eligible examples, then pick ``k`` of them
  by maximal marginal relevance (:mod:`vidagent.retrieval.mmr`). PALM's defaults: λ = 0.5,
  fetch_k = 20.
- ``topk``: the ``k`` most similar eligible examples.
- ``random``: ``k`` eligible examples uniformly at random (seeded), the ablation baseline.

Eligible means: not from the query's own video or clip (``exclude_sources``: no leakage), of the
requested ``task`` if one is given, and not a duplicate of an example already taken (same input
and target text; the most similar copy is kept). Exclusions shrink the candidate list, so the search
fetches more than ``fetch_k``, doubling until enough eligible candidates are found or the bank
is exhausted; with an approximate index that runs dry, it falls back to an exact scan. Fewer
than ``k`` examples come back only when the bank has fewer eligible ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import numpy as np
from pydantic import Field

from vidagent.core.errors import ConfigError
from vidagent.core.records import Record
from vidagent.retrieval.bank import Example, ExampleBank
from vidagent.retrieval.mmr import check_lambda, mmr

Strategy = Literal["mmr", "topk", "random"]
STRATEGIES: tuple[str, ...] = ("mmr", "topk", "random")


class SelectedExample(Record):
    """One chosen example, its row in the bank and why it was chosen."""

    rank: int = Field(ge=0, description="Position in the selection (0 = first picked)")
    id: int = Field(ge=0, description="Row of the example in the bank")
    similarity: float = Field(description="Cosine similarity to the query")
    mmr_score: float | None = Field(default=None, description="MMR score when picked (mmr only)")
    example: Example


def _eligible(
    bank: ExampleBank, ids: np.ndarray, excluded: np.ndarray, task_code: int | None
) -> np.ndarray:
    """Mask over ``ids``: not excluded, of the task, then the first of each duplicate group."""
    keep = ~np.isin(ids, excluded) if excluded.size else np.ones(ids.shape, dtype=bool)
    if task_code is not None:
        keep &= bank.task_code[ids] == task_code
    positions = np.flatnonzero(keep)
    _, first = np.unique(bank.duplicate_group[ids[positions]], return_index=True)
    mask = np.zeros(ids.shape, dtype=bool)
    mask[positions[first]] = True
    return mask


def candidates(
    bank: ExampleBank,
    vector: np.ndarray,
    want: int,
    *,
    exclude_sources: Iterable[str] = (),
    task: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(similarities, ids)`` of up to ``want`` eligible examples nearest ``vector``, best first.

    Fetches ``want`` plus the number of excluded rows, doubling while eligibility filtering leaves
    fewer than ``want``.
    """
    excluded = bank.ids_of_sources(exclude_sources)
    task_code = _task_code(bank, task)
    if task_code is None and task is not None:
        return np.empty(0, dtype=np.float32), np.empty(0, dtype=np.int64)
    total = len(bank)
    n = min(total, want + excluded.size)
    while True:
        sims, ids = bank.search(vector, n)
        mask = _eligible(bank, ids, excluded, task_code)
        if mask.sum() >= want or n >= total:
            break
        n = min(total, 2 * n)
    if mask.sum() < want and not bank.is_exact and ids.size < total:
        # An approximate index may return fewer than `total` hits even when asked for all.
        sims, ids = bank.exact_search(vector, total)
        mask = _eligible(bank, ids, excluded, task_code)
    sims, ids = sims[mask], ids[mask]
    return sims[:want], ids[:want]


def _task_code(bank: ExampleBank, task: str | None) -> int | None:
    return None if task is None else bank.task_id(task)


def _random_ids(
    bank: ExampleBank,
    k: int,
    exclude_sources: Iterable[str],
    task: str | None,
    seed: int | None,
) -> np.ndarray:
    """``k`` eligible rows drawn uniformly without replacement."""
    excluded = bank.ids_of_sources(exclude_sources)
    task_code = _task_code(bank, task)
    if task_code is None and task is not None:
        return np.empty(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    total = len(bank)
    size = min(total, 4 * k + excluded.size)
    while True:
        drawn = rng.permutation(total) if size >= total else rng.choice(total, size, replace=False)
        mask = _eligible(bank, drawn.astype(np.int64), excluded, task_code)
        if mask.sum() >= k or size >= total:
            return drawn[mask][:k].astype(np.int64)
        size = total


def select_examples(
    bank: ExampleBank,
    query: str | np.ndarray,
    k: int = 8,
    *,
    strategy: Strategy = "mmr",
    lambda_: float = 0.5,
    fetch_k: int = 20,
    exclude_sources: Iterable[str] = (),
    task: str | None = None,
    seed: int | None = None,
) -> list[SelectedExample]:
    """Choose ``k`` in-context examples for ``query`` (text, or a vector of the bank's dimension).

    ``exclude_sources``: video/clip ids whose examples must not be used (the query's own).
    ``fetch_k``: MMR candidate pool size (raised to ``k`` if smaller). ``seed``: for ``random``.
    """
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown selection strategy {strategy!r}: choose one of {STRATEGIES}")
    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}")
    if fetch_k < 1:
        raise ConfigError(f"fetch_k must be at least 1, got {fetch_k}")
    lam = check_lambda(lambda_)
    exclude = frozenset(exclude_sources)
    vector = bank.query_vector(query)
    if strategy == "random":
        ids = _random_ids(bank, k, exclude, task, seed)
        sims = bank.vectors(ids) @ vector
        return _records(bank, ids, sims, None)
    want = k if strategy == "topk" else max(fetch_k, k)
    sims, ids = candidates(bank, vector, want, exclude_sources=exclude, task=task)
    if strategy == "topk":
        return _records(bank, ids[:k], sims[:k], None)
    picked = mmr(vector, bank.vectors(ids), k, lam)
    return _records(bank, ids[picked.indices], sims[picked.indices], picked.scores)


def _records(
    bank: ExampleBank, ids: np.ndarray, sims: np.ndarray, mmr_scores: np.ndarray | None
) -> list[SelectedExample]:
    return [
        SelectedExample(
            rank=rank,
            id=int(row),
            similarity=float(sims[rank]),
            mmr_score=None if mmr_scores is None else float(mmr_scores[rank]),
            example=bank.examples[int(row)],
        )
        for rank, row in enumerate(ids)
    ]
