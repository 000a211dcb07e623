"""Moment-retrieval metrics, ported from moment_detr's ``standalone_eval`` (jayleicn/moment_detr).

- :func:`eval_moment_retrieval`: the official ``eval_moment_retrieval``: for the length splits
  short (0, 10], middle (10, 30], long (30, 150] and full (GT windows of a query outside a split
  are dropped; queries left with none are dropped), ``MR-mAP`` (ActivityNet-style average precision
  per query at IoU 0.5:0.05:0.95 over the top 10 predicted windows, mean over queries, plus the
  ``average`` over thresholds) and ``MR-R1`` (top-1 window against the GT window it overlaps most).
- :func:`recall_at_one`: R1 at any IoU thresholds and the mean top-1 IoU, with the same
  best-matching-GT rule (used for Charades-STA and extra QVHighlights figures).

All figures are percent with two decimals, as the official code formats them. A length split
with no GT window (a small or one-sided file) reports ``None`` for its figures instead of failing.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from vidagent.evals.common import pct

LENGTH_RANGES = {"short": (0, 10), "middle": (10, 30), "long": (30, 150), "full": (0, 150)}
MAP_IOUS = [round(0.5 + 0.05 * i, 2) for i in range(10)]
R1_IOUS = MAP_IOUS


def iou_cross(spans1: Any, spans2: Any) -> Any:
    """IoU of every span of ``spans1`` (N, 2) with every span of ``spans2`` (M, 2): (N, M)."""
    import numpy as np

    a, b = np.asarray(spans1, dtype=float), np.asarray(spans2, dtype=float)
    areas1, areas2 = a[:, 1] - a[:, 0], b[:, 1] - b[:, 0]
    left = np.maximum(a[:, None, 0], b[None, :, 0])
    right = np.minimum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(right - left, 0, None)
    union = areas1[:, None] + areas2[None, :] - inter
    return inter / union


def iou_paired(spans1: Any, spans2: Any) -> Any:
    import numpy as np

    a, b = np.asarray(spans1, dtype=float), np.asarray(spans2, dtype=float)
    inter = np.clip(np.minimum(a[:, 1], b[:, 1]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    union = (a[:, 1] - a[:, 0]) + (b[:, 1] - b[:, 0]) - inter
    return inter / union


def interpolated_precision_recall(precision: Any, recall: Any) -> float:
    import numpy as np

    mprecision = np.hstack([[0], precision, [0]])
    mrecall = np.hstack([[0], recall, [1]])
    for i in range(len(mprecision) - 1)[::-1]:
        mprecision[i] = max(mprecision[i], mprecision[i + 1])
    idx = np.where(mrecall[1::] != mrecall[0:-1])[0] + 1
    return float(np.sum((mrecall[idx] - mrecall[idx - 1]) * mprecision[idx]))


def average_precision(
    gt_windows: Sequence[Sequence[float]],
    pred_windows: Sequence[Sequence[float]],
    thresholds: Sequence[float],
) -> list[float]:
    """AP of one query's scored windows ``[st, ed, score]`` at each IoU threshold (ActivityNet's
    ``compute_average_precision_detection`` restricted to one video, as moment_detr calls it)."""
    import numpy as np

    ap = np.zeros(len(thresholds))
    if not pred_windows:
        return ap.tolist()
    preds = sorted(pred_windows, key=lambda w: -w[2])  # stable, as list.sort in the original
    n_gt = len(gt_windows)
    lock_gt = np.ones((len(thresholds), n_gt)) * -1
    tp = np.zeros((len(thresholds), len(preds)))
    fp = np.zeros((len(thresholds), len(preds)))
    for idx, pred in enumerate(preds):
        if not n_gt:
            fp[:, idx] = 1
            continue
        tiou = iou_cross([[pred[0], pred[1]]], [[g[0], g[1]] for g in gt_windows])[0].reshape(-1)
        order = tiou.argsort()[::-1]
        for t_idx, threshold in enumerate(thresholds):
            for j in order:
                if tiou[j] < threshold:
                    fp[t_idx, idx] = 1
                    break
                if lock_gt[t_idx, j] >= 0:
                    continue
                tp[t_idx, idx] = 1
                lock_gt[t_idx, j] = idx
                break
            if fp[t_idx, idx] == 0 and tp[t_idx, idx] == 0:
                fp[t_idx, idx] = 1
    tp_cum = np.cumsum(tp, axis=1).astype(float)
    fp_cum = np.cumsum(fp, axis=1).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = tp_cum / float(n_gt)
    precision = tp_cum / (tp_cum + fp_cum)
    return [interpolated_precision_recall(precision[t], recall[t]) for t in range(len(thresholds))]


def mean_ap(
    submission: Sequence[dict[str, Any]],
    ground_truth: Sequence[dict[str, Any]],
    max_pred_windows: int = 10,
) -> dict[str, float]:
    """``compute_mr_ap``: mAP per IoU threshold and their ``average``."""
    import numpy as np

    gt = {d["qid"]: d["relevant_windows"] for d in ground_truth}
    rows = [
        average_precision(
            gt.get(d["qid"], []), d["pred_relevant_windows"][:max_pred_windows], MAP_IOUS
        )
        for d in submission
        if d["pred_relevant_windows"][:max_pred_windows]  # queries without windows: not counted
    ]
    per_thd = np.array(rows).mean(0)
    out = {str(t): float(v) for t, v in zip(MAP_IOUS, per_thd, strict=True)}
    out["average"] = float(np.mean(per_thd))
    return {k: pct(v) for k, v in out.items()}


def top1_ious(submission: Sequence[dict[str, Any]], ground_truth: Sequence[dict[str, Any]]) -> Any:
    """IoU of each query's top window with the GT window it overlaps most (``compute_mr_r1``)."""
    import numpy as np

    pred = {d["qid"]: d["pred_relevant_windows"][0][:2] for d in submission}
    best = {}
    for d in ground_truth:
        windows = d["relevant_windows"]
        pick = 0
        if len(windows) > 0:
            pick = int(np.argmax(iou_cross(np.array([pred[d["qid"]]]), np.array(windows))[0]))
        best[d["qid"]] = windows[pick]
    qids = list(pred)
    return iou_paired(
        np.array([pred[q] for q in qids]).astype(float),
        np.array([best[q] for q in qids]).astype(float),
    )


def recall_at_one(
    submission: Sequence[dict[str, Any]],
    ground_truth: Sequence[dict[str, Any]],
    thresholds: Sequence[float] = R1_IOUS,
) -> dict[str, float]:
    import numpy as np

    ious = top1_ious(submission, ground_truth)
    return {str(t): float(f"{np.mean(ious >= t) * 100:.2f}") for t in thresholds}


def mean_iou(submission: Sequence[dict[str, Any]], ground_truth: Sequence[dict[str, Any]]) -> float:
    import numpy as np

    return pct(float(np.mean(top1_ious(submission, ground_truth))))


def data_by_range(
    submission: Sequence[dict[str, Any]], ground_truth: Sequence[dict[str, Any]], name: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``get_data_by_range``: GT windows with ``min < length <= max``, and their queries."""
    low, high = LENGTH_RANGES[name]
    if name == "full":
        return list(submission), list(ground_truth)
    gt_in, qids = [], set()
    for d in ground_truth:
        windows = [w for w in d["relevant_windows"] if low < w[1] - w[0] <= high]
        if windows:
            d = copy.deepcopy(d)
            d["relevant_windows"] = windows
            gt_in.append(d)
            qids.add(d["qid"])
    return [d for d in submission if d["qid"] in qids], gt_in


def eval_moment_retrieval(
    submission: Sequence[dict[str, Any]], ground_truth: Sequence[dict[str, Any]]
) -> dict[str, dict[str, dict[str, Any]]]:
    """The official ``eval_moment_retrieval`` (without its prints)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name in ("short", "middle", "long", "full"):
        sub, gt = data_by_range(submission, ground_truth, name)
        if not gt:  # no GT window of this length: no figure (the original divides by zero)
            empty: dict[str, float | None] = {str(t): None for t in MAP_IOUS}
            out[name] = {"MR-mAP": {**empty, "average": None}, "MR-R1": dict(empty)}
            continue
        out[name] = {"MR-mAP": mean_ap(sub, gt), "MR-R1": recall_at_one(sub, gt)}
    return out
