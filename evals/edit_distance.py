"""Edit distance as the Ego4D forecasting code computes it (``editdistance.eval``), and the best
distance over candidate sequences (``lta_metrics.edit_distance`` for one window)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence


def levenshtein(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """Edit distance (insert, delete, substitute: cost 1 each), as ``editdistance.eval``."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        cur = [i]
        for j, y in enumerate(b, start=1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def min_edit_distance(
    candidates: Sequence[Sequence[Hashable]], truth: Sequence[Hashable], z: int
) -> float:
    """Best (lowest) ``levenshtein(candidate[:z], truth) / z`` over the candidates."""
    if not candidates:
        return 1.0
    return min(levenshtein(list(c)[:z], list(truth)) / z for c in candidates)
