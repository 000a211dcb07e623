"""QVHighlights moment retrieval (Lei et al., NeurIPS 2021; github.com/jayleicn/moment_detr).

- Source: ``data/highlight_{train,val,test}_release.jsonl`` of moment_detr: one query per line
  with qid, query, duration, vid, relevant_windows ([[st, ed], ...] seconds), relevant_clip_ids,
  saliency_scores (test: no windows).
- Split: ``val`` locally (1,550 queries); ``test`` through the CodaLab server.
- Answer format: moment_detr's submission JSONL: ``{"qid", "query", "vid",
  "pred_relevant_windows": [[st, ed, score], ...]}`` (best first; ``pred_saliency_scores`` is
  accepted and ignored); a run writes ``submission.jsonl``.
- Metric: the official ``standalone_eval`` moment-retrieval figures (ported faithfully in
  :mod:`vidagent.evals.moments`): ``brief`` (MR-full-mAP, mAP@0.5/0.75, short/middle/long mAP,
  R1@0.5/0.7) and per length split ``MR-mAP`` / ``MR-R1``; plus ``R1@0.3``, ``R1@0.5``,
  ``R1@0.7`` and ``mIoU`` of the top window against the best-matching GT window.
- Caveats: highlight-detection metrics (``HL-*``) are not computed: vidagent predicts no
  per-clip saliency. Like the official ``match_number=False`` mode, only queries present in both
  files are scored (``n``, ``missing`` report coverage). No bank examples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vidagent.evals.benchmark import DEFAULT_PARAMS, MetricTable, Params
from vidagent.evals.common import EvalError, Sample, numbered_jsonl
from vidagent.evals.grounding import MomentBenchmark, MomentRows, score_moments
from vidagent.evals.moments import LENGTH_RANGES, eval_moment_retrieval


class QVHighlights(MomentBenchmark):
    name = "qvhighlights"
    description = "QVHighlights moment retrieval: official MR mAP and R1 per length split, mIoU"
    submission_file = "submission.jsonl"

    def load_samples(self, path: Path | str, params: Params = DEFAULT_PARAMS) -> list[Sample]:
        samples = []
        first: dict[str, int] = {}
        for line, d in numbered_jsonl(path):
            qid = str(d.get("qid")) if isinstance(d, dict) else ""
            if qid in first:
                raise EvalError(path, f"line {line}: qid {qid} again (first on line "
                                      f"{first[qid]})")  # fmt: skip
            first[qid] = line
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
                raise EvalError(path, f"line {line}: not a QVHighlights query ({exc})") from exc
        return samples

    def score(
        self, samples: Sequence[Sample], predictions: MomentRows, params: Params = DEFAULT_PARAMS
    ) -> dict[str, Any]:
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

    def report(self, metrics: Mapping[str, Any]) -> list[MetricTable]:
        flat = ["R1@0.3", "R1@0.5", "R1@0.7", "mIoU", "n", "missing"]
        tables = [MetricTable(rows=[(k, metrics[k]) for k in flat if k in metrics])]
        if "brief" in metrics:
            tables.append(MetricTable(title="brief", rows=list(metrics["brief"].items())))
            header = ("GT length", "MR-mAP", "mAP@0.5", "mAP@0.75", "R1@0.5", "R1@0.7")
            rows = [
                (split, m["MR-mAP"]["average"], m["MR-mAP"]["0.5"], m["MR-mAP"]["0.75"],
                 m["MR-R1"]["0.5"], m["MR-R1"]["0.7"])
                for split, m in ((s, metrics[s]) for s in LENGTH_RANGES)
            ]  # fmt: skip
            tables.append(MetricTable(title="by GT window length", header=header, rows=rows))
        return tables


BENCHMARK = QVHighlights()
