"""QVHighlights moment retrieval (Lei et al., NeurIPS 2021; github.com/jayleicn/moment_detr).

- Source: ``data/highlight_{train,val,test}_release.jsonl`` of moment_detr: one query per line
  with qid, query, duration, vid, relevant_windows ([[st, ed], ...] seconds), relevant_clip_ids,
  saliency_scores (test: no windows).
- Split: ``val`` locally (1,550 queries); ``test`` through the CodaLab server.
- Answer format: moment_detr's submission JSONL: ``{"qid", "query", "vid",
  "pred_relevant_windows": [[st, ed, score], ...]}`` (best first; ``pred_saliency_scores`` is
  accepted and ignored).
- Metric: the official ``standalone_eval`` moment-retrieval figures (ported faithfully in
  :mod:`evals.moments`): ``brief`` (MR-full-mAP, mAP@0.5/0.75, short/middle/long mAP,
  R1@0.5/0.7) and per length split ``MR-mAP`` / ``MR-R1``; plus ``R1@0.3``, ``R1@0.5``,
  ``R1@0.7`` and ``mIoU`` of the top window against the best-matching GT window.
- Caveats: highlight-detection metrics (``HL-*``) are not computed: vidagent predicts no
  per-clip saliency. Like the official ``match_number=False`` mode, only queries present in both
  files are scored (``n``, ``missing`` report coverage).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals.common import EvalError, Sample, load_jsonl
from evals.moments import eval_moment_retrieval, mean_iou, recall_at_one

NAME = "qvhighlights"


def load_samples(path: Path | str) -> list[Sample]:
    samples = []
    for pos, d in enumerate(load_jsonl(path)):
        try:
            samples.append(
                Sample(
                    key=str(d["qid"]),
                    video_id=str(d["vid"]),
                    kind="moment",
                    question=str(d["query"]),
                    windows=[[float(a), float(b)] for a, b in d.get("relevant_windows", [])],
                    duration=float(d["duration"]),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise EvalError(path, f"line {pos + 1}: not a QVHighlights query ({exc})") from exc
    return samples


def read_predictions(path: Path | str) -> list[dict[str, Any]]:
    rows = load_jsonl(path)
    for pos, d in enumerate(rows):
        if not isinstance(d, dict) or "qid" not in d or "pred_relevant_windows" not in d:
            raise EvalError(path, f"line {pos + 1}: needs qid and pred_relevant_windows")
    return rows


def score_moments(samples: Sequence[Sample], predictions: Sequence[dict[str, Any]]) -> dict:
    """R1@{0.3,0.5,0.7} and mIoU of the top window (best-matching GT), over shared queries."""
    by_key = {s.key: s for s in samples if s.windows}
    sub = [
        {"qid": str(p["qid"]), "pred_relevant_windows": p["pred_relevant_windows"]}
        for p in predictions
        if str(p["qid"]) in by_key and p["pred_relevant_windows"]
    ]
    keys = {d["qid"] for d in sub}
    gt = [{"qid": k, "relevant_windows": s.windows} for k, s in by_key.items() if k in keys]
    out: dict[str, Any] = {}
    if sub:
        r1 = recall_at_one(sub, gt, [0.3, 0.5, 0.7])
        out.update({f"R1@{t}": v for t, v in r1.items()})
        out["mIoU"] = mean_iou(sub, gt)
    out.update({"n": len(sub), "missing": len(by_key) - len(sub)})
    return out


def score(samples: Sequence[Sample], predictions: Sequence[dict[str, Any]]) -> dict[str, Any]:
    metrics = score_moments(samples, predictions)
    keys = {s.key for s in samples if s.windows}
    sub = [
        {"qid": str(p["qid"]), "pred_relevant_windows": p["pred_relevant_windows"]}
        for p in predictions
        if str(p["qid"]) in keys and p["pred_relevant_windows"]
    ]
    shared = {d["qid"] for d in sub}
    gt = [{"qid": s.key, "relevant_windows": s.windows} for s in samples if s.key in shared]
    if not sub:
        return metrics
    mr = eval_moment_retrieval(sub, gt)
    brief = {
        "MR-full-mAP": mr["full"]["MR-mAP"]["average"],
        "MR-full-mAP@0.5": mr["full"]["MR-mAP"]["0.5"],
        "MR-full-mAP@0.75": mr["full"]["MR-mAP"]["0.75"],
        "MR-short-mAP": mr["short"]["MR-mAP"]["average"],
        "MR-middle-mAP": mr["middle"]["MR-mAP"]["average"],
        "MR-long-mAP": mr["long"]["MR-mAP"]["average"],
        "MR-full-R1@0.5": mr["full"]["MR-R1"]["0.5"],
        "MR-full-R1@0.7": mr["full"]["MR-R1"]["0.7"],
    }
    return {"brief": dict(sorted(brief.items())), **mr, **metrics}


def score_files(annotations: Path, predictions: Path) -> dict[str, Any]:
    return score(load_samples(annotations), read_predictions(predictions))
