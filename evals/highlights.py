"""Highlight-detection metrics, ported from moment_detr's ``standalone_eval`` (jayleicn/moment_detr,
``eval_highlight`` in ``standalone_eval/eval.py`` and ``get_ap`` in ``standalone_eval/utils.py``).

The video is a grid of 2 s clips (clip ``i`` covers ``[2i, 2i + 2)``); a query's ground truth is
``int(duration / 2)`` clips by 3 annotators, each clip of ``relevant_clip_ids`` scored 0-4 by each
annotator (``saliency_scores``), every other clip 0. A prediction is one saliency score per clip
(``pred_saliency_scores``), longer lists cut and shorter ones padded with 0 to the grid, as the
official code does. For each minimum score ``HL-min-Fair`` (>= 2), ``HL-min-Good`` (>= 3) and
``HL-min-VeryGood`` (4) a clip is positive for an annotator when that annotator scored it at least
the minimum, and:

- ``HL-mAP``: the average precision of the predicted scores against each annotator's positives
  (``get_ap``: the interpolated AP of the video2gif evaluation, 0 when the annotator marked no
  clip positive and 1 when every clip), the mean over queries and annotators;
- ``HL-Hit1``: whether the top-scored clip (the first, on a tie; none when it lies past the grid)
  is positive for at least one annotator, the mean over queries.

Both are percent with two decimals, as the official code prints them. The official ``get_ap``
calls sklearn's ``precision_recall_curve``; :func:`precision_recall_curve` is the same curve in
numpy (sklearn's ``_binary_clf_curve``, thresholds at each distinct score, highest first, then the
curve reversed with a final ``(precision 1, recall 0)`` point), so sklearn is not needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from vidagent.evals.common import pct

if TYPE_CHECKING:
    import numpy as np

CLIP_SECONDS = 2
SALIENCY_MINIMA = {"Fair": 2, "Good": 3, "VeryGood": 4}
"""Each ``HL-min-<name>`` block's minimum annotator score for a positive clip."""


class HighlightTruth(NamedTuple):
    """One query's highlight ground truth: the video length and the scored clips."""

    duration: float
    relevant_clip_ids: Sequence[int]
    saliency_scores: Sequence[Sequence[float]]  # one row of 3 annotator scores per relevant clip


def clip_count(duration: float) -> int:
    """Clips of the official grid for a video of ``duration`` seconds (``int(duration / 2)``)."""
    return int(duration / CLIP_SECONDS)


def gt_scores(truth: HighlightTruth) -> np.ndarray:
    """``(clips, 3)`` annotator scores over the whole grid (official ``mk_gt_scores``)."""
    import numpy as np

    full = np.zeros((clip_count(truth.duration), 3))
    full[np.array(truth.relevant_clip_ids, dtype=int)] = np.array(truth.saliency_scores)
    return full


def precision_recall_curve(y_true: np.ndarray, y_score: np.ndarray) -> tuple[Any, Any]:
    """``(precision, recall)`` of sklearn's ``precision_recall_curve`` for binary ``y_true``."""
    import numpy as np

    order = np.argsort(y_score, kind="mergesort")[::-1]
    score, truth = y_score[order], y_true[order].astype(float)
    distinct = np.where(np.diff(score))[0]
    thresholds = np.r_[distinct, truth.size - 1]
    tps = np.cumsum(truth)[thresholds]
    fps = 1 + thresholds - tps
    precision = np.divide(tps, tps + fps, out=np.zeros_like(tps), where=(tps + fps) != 0)
    recall = np.ones_like(tps) if tps[-1] == 0 else tps / tps[-1]
    return np.hstack((precision[::-1], 1)), np.hstack((recall[::-1], 0))


def get_ap(y_true: np.ndarray, y_predict: np.ndarray) -> float:
    """The official ``get_ap`` (``interpolate=True``, ``point_11=False``), quirks included: the
    "interpolation" is a running maximum from the high-recall end of the curve, and the AP is the
    mean precision at each point where the (float32) recall changes."""
    import numpy as np

    if len(set(y_true.tolist())) == 1:
        return 0.0 if y_true[0] == 0 else 1.0
    precision, recall = precision_recall_curve(y_true, y_predict)
    recall = recall.astype(np.float32)
    precision = np.maximum.accumulate(precision)
    return float(np.mean(precision[np.where(np.diff(recall))]))


def _fit(y_predict: Sequence[float], clips: int) -> np.ndarray:
    """The prediction cut or padded with 0 to ``clips`` scores (``compute_ap_from_tuple``)."""
    import numpy as np

    pred = np.asarray(y_predict, dtype=float)[:clips]
    if len(pred) < clips:
        pred = np.concatenate([pred, np.zeros(clips - len(pred))])
    return pred


def eval_highlight(
    predictions: Mapping[str, Sequence[float]], truths: Mapping[str, HighlightTruth]
) -> dict[str, dict[str, float]]:
    """``{"HL-min-Fair": {"HL-mAP", "HL-Hit1"}, ...}`` over the queries of ``predictions`` (each
    must be in ``truths``), as the official ``eval_highlight``."""
    import numpy as np

    full = {qid: gt_scores(truths[qid]) for qid in predictions}
    out: dict[str, dict[str, float]] = {}
    for name, minimum in SALIENCY_MINIMA.items():
        aps = np.zeros((len(predictions), 3))
        hits = np.zeros((len(predictions), 3))
        for row, (qid, scores) in enumerate(predictions.items()):
            binary = (full[qid] >= minimum).astype(float)
            top = int(np.argmax(scores))
            if top < len(binary):
                hits[row] = binary[top]
            pred = _fit(scores, len(binary))
            for worker in range(3):
                aps[row, worker] = get_ap(binary[:, worker], pred)
        out[f"HL-min-{name}"] = {"HL-mAP": pct(float(np.mean(aps))),
                                 "HL-Hit1": pct(float(np.mean(np.max(hits, 1))))}  # fmt: skip
    return out


def highlight_brief(blocks: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """The official ``brief`` entries of :func:`eval_highlight`'s blocks, in its order
    (``HL-min-Fair-mAP``, ``HL-min-Fair-Hit1``, ``HL-min-Good-mAP``, ...)."""
    return {
        f"{name}-{metric.split('-')[1]}": value
        for name, block in blocks.items()
        for metric, value in block.items()
    }
