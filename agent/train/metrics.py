"""Ego4D action recognition metrics: verb and noun top-1 / top-5 accuracy, action top-1.

As the Ego4D recognition baselines report them (github.com/EGO4D/forecasting, ``lta`` recognition):
a sample's verb is right at top-k when its class is among the k highest verb scores (k is capped
at the number of classes), the same for nouns, and its action is right when the top-1 verb and the
top-1 noun are both right. Fractions in [0, 1] rounded to 4 decimals, over the labelled segments
of the split (a segment labelled by two actions counts once per label).
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict


class RecognitionMetrics(BaseModel):
    """Accuracy of one split's ``n`` labelled segments."""

    model_config = ConfigDict(extra="forbid")

    n: int
    verb_top1: float
    verb_top5: float
    noun_top1: float
    noun_top5: float
    action_top1: float


def top_k_hits(scores: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """``(n,)`` booleans: is ``labels[i]`` among the ``k`` best columns of ``scores[i]``."""
    k = min(k, scores.shape[1])
    # A tie counts for the label: only strictly higher scores push it out of the top k.
    higher = (scores > scores[np.arange(len(labels)), labels][:, None]).sum(axis=1)
    return np.asarray(higher < k)


def recognition_metrics(
    verb_scores: np.ndarray, noun_scores: np.ndarray, verbs: np.ndarray, nouns: np.ndarray
) -> RecognitionMetrics:
    """The metrics of ``(n, V)`` / ``(n, N)`` scores (logits or probabilities) against labels."""
    n = len(verbs)
    if n == 0:
        return RecognitionMetrics(
            n=0, verb_top1=0, verb_top5=0, noun_top1=0, noun_top5=0, action_top1=0
        )
    v1, n1 = top_k_hits(verb_scores, verbs, 1), top_k_hits(noun_scores, nouns, 1)
    return RecognitionMetrics(
        n=n,
        verb_top1=round(float(v1.mean()), 4),
        verb_top5=round(float(top_k_hits(verb_scores, verbs, 5).mean()), 4),
        noun_top1=round(float(n1.mean()), 4),
        noun_top5=round(float(top_k_hits(noun_scores, nouns, 5).mean()), 4),
        action_top1=round(float((v1 & n1).mean()), 4),
    )


def majority_metrics(
    train_verbs: np.ndarray,
    train_nouns: np.ndarray,
    verbs: np.ndarray,
    nouns: np.ndarray,
    n_verbs: int,
    n_nouns: int,
) -> RecognitionMetrics:
    """The chance row: always predict the training set's most frequent verb and noun (for top-5
    the classes in order of training frequency) and, for action top-1, its most frequent (verb,
    noun) pair (the two most frequent parts need not make an action that exists)."""
    n = len(verbs)

    def scores(train: np.ndarray, classes: int) -> np.ndarray:
        counts = np.bincount(train, minlength=classes).astype(np.float64)
        counts += np.linspace(1e-3, 0, classes)  # ties: the lower class index first
        return np.tile(counts, (n, 1))

    metrics = recognition_metrics(
        scores(train_verbs, n_verbs), scores(train_nouns, n_nouns), verbs, nouns
    )
    if n == 0 or len(train_verbs) == 0:
        return metrics
    pairs = train_verbs.astype(np.int64) * n_nouns + train_nouns
    values, counts = np.unique(pairs, return_counts=True)
    common = values[np.argmax(counts)]
    hits = (verbs.astype(np.int64) * n_nouns + nouns) == common
    return metrics.model_copy(update={"action_top1": round(float(hits.mean()), 4)})
