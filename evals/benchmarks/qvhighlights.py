"""QVHighlights moment retrieval and highlight detection (Lei et al., NeurIPS 2021;
github.com/jayleicn/moment_detr).

- Source: ``data/highlight_{train,val,test}_release.jsonl`` of moment_detr: one query per line
  with qid, query, duration, vid, relevant_windows ([[st, ed], ...] seconds), relevant_clip_ids
  and saliency_scores (3 annotators' 0-4 scores of each relevant 2 s clip; test: neither).
- Split: ``val`` locally (1,550 queries); ``test`` through the CodaLab server.
- Answer format: moment_detr's submission JSONL: ``{"qid", "query", "vid",
  "pred_relevant_windows": [[st, ed, score], ...], "pred_saliency_scores": [s0, s1, ...]}``
  (windows best first; one saliency score per 2 s clip, clip ``i`` covering ``[2i, 2i + 2)``);
  a run writes ``submission.jsonl``.
- Prediction: the window is ``localize_query``'s (:func:`vidagent.evals.grounding.solve_moment`).
  The saliency is query-to-segment similarity mapped onto the clip grid
  (:mod:`vidagent.evals.saliency`): with the run's text embedder (MiniLM, this benchmark asks for
  one: ``needs_text_embedder``) the cosine of the query and each segment's caption and action
  labels, which ``localize_query`` also uses to refine its window; without one, the lexical
  overlap of the query's words with the segment's text. A failed query's row has the window
  ``[0, 0]`` and a constant saliency of 0 (it stays in both denominators; hit@1 then takes clip 0,
  as the official code does on a tie).
- Metric: the official ``standalone_eval`` figures: moment retrieval (ported in
  :mod:`vidagent.evals.moments`): ``MR-mAP`` / ``MR-R1`` per GT length split; highlight
  detection (ported in :mod:`vidagent.evals.highlights`): ``HL-min-{Fair,Good,VeryGood}`` with
  ``HL-mAP`` and ``HL-Hit1``; and the official ``brief`` of both (MR entries sorted by name, then
  the HL ones). Plus ``R1@0.3``, ``R1@0.5``, ``R1@0.7`` and ``mIoU`` of the top window against the
  best-matching GT window.
- Caveats: like the official ``match_number=False`` mode, only queries present in both files are
  scored (``n``, ``missing`` report the MR coverage); MR skips rows with no window, HL rows with
  no ``pred_saliency_scores`` (the official code would score HL only if the first row has them).
  No bank examples.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from vidagent.evals.benchmark import DEFAULT_PARAMS, MetricTable, Params, Solution, SolveContext
from vidagent.evals.common import EvalError, Sample, SampleResult, numbered_jsonl
from vidagent.evals.grounding import (
    MomentBenchmark,
    MomentRows,
    read_moment_predictions,
    score_moments,
    solve_moment,
)
from vidagent.evals.highlights import (
    SALIENCY_MINIMA,
    HighlightTruth,
    clip_count,
    eval_highlight,
    highlight_brief,
)
from vidagent.evals.moments import LENGTH_RANGES, eval_moment_retrieval
from vidagent.evals.saliency import clip_saliency

if TYPE_CHECKING:
    from vidagent.core.records import Timeline

WINDOWS, SALIENCY = "pred_relevant_windows", "pred_saliency_scores"


class QVHighlights(MomentBenchmark):
    name = "qvhighlights"
    description = (
        "QVHighlights moment retrieval and highlight detection: official MR mAP and R1 per "
        "length split, HL mAP and HIT@1, mIoU"
    )
    submission_file = "submission.jsonl"
    needs_text_embedder: ClassVar[bool] = True  # query-to-segment similarity for the saliency

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
                        target=_saliency_truth(d),
                    )
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise EvalError(path, f"line {line}: not a QVHighlights query ({exc})") from exc
        return samples

    def read_predictions(self, path: Path | str) -> MomentRows:
        """Moment rows (:func:`~vidagent.evals.grounding.read_moment_predictions`) whose
        ``pred_saliency_scores``, where given, is a non-empty list of finite numbers."""
        rows = read_moment_predictions(path)
        for line, d in numbered_jsonl(path):
            if SALIENCY in d and not _scores(d[SALIENCY]):
                got = str(d[SALIENCY])[:60]
                raise EvalError(path, f"line {line}: {SALIENCY} must be a non-empty list of "
                                      f"numbers, one per 2 s clip (got {got})")  # fmt: skip
        return rows

    def solve(self, sample: Sample, timeline: Timeline, context: SolveContext) -> Solution:
        moment = solve_moment(sample, timeline, context)
        duration = sample.duration if sample.duration else timeline.video.duration
        saliency = clip_saliency(timeline, sample.question, duration, moment.run.relevance)
        return Solution({WINDOWS: moment.prediction, SALIENCY: saliency}, moment.valid, moment.run)

    def submission(
        self, samples: Sequence[Sample], results: Mapping[str, SampleResult]
    ) -> MomentRows:
        """The moment rows with each query's ``pred_saliency_scores`` (a failed query: all 0;
        a result recorded before saliency was predicted, a bare window list: none)."""
        rows = super().submission(samples, _windows_only(results))
        by_key = {s.key: s for s in samples}
        for row in rows:
            result, sample = results[row["qid"]], by_key[row["qid"]]
            if not result.ok:
                row[SALIENCY] = [0.0] * max(1, clip_count(sample.duration or 0.0))
            elif isinstance(result.prediction, dict):
                row[SALIENCY] = result.prediction[SALIENCY]
        return rows

    def score(
        self, samples: Sequence[Sample], predictions: MomentRows, params: Params = DEFAULT_PARAMS
    ) -> dict[str, Any]:
        metrics = score_moments(samples, predictions)
        keys = {s.key for s in samples if s.windows}
        sub = [
            {"qid": str(p["qid"]), WINDOWS: p[WINDOWS]}
            for p in predictions
            if str(p["qid"]) in keys and p[WINDOWS]
        ]
        shared = {d["qid"] for d in sub}
        gt = [{"qid": s.key, "relevant_windows": s.windows} for s in samples if s.key in shared]
        brief: dict[str, float] = {}
        blocks: dict[str, Any] = {}
        if sub:
            mr = eval_moment_retrieval(sub, gt)
            brief.update(sorted(_mr_brief(mr).items()))
            blocks.update(mr)
        truths = {s.key: HighlightTruth(**s.target, duration=s.duration or 0.0)
                  for s in samples if s.target}  # fmt: skip
        scored = {str(p["qid"]): p[SALIENCY] for p in predictions
                  if SALIENCY in p and str(p["qid"]) in truths}  # fmt: skip
        if scored:
            hl = eval_highlight(scored, truths)
            brief.update(highlight_brief(hl))
            blocks.update(hl)
        if not brief:
            return metrics
        return {"brief": brief, **dict(sorted(blocks.items())), **metrics}

    def report(self, metrics: Mapping[str, Any]) -> list[MetricTable]:
        flat = ["R1@0.3", "R1@0.5", "R1@0.7", "mIoU", "n", "missing"]
        tables = [MetricTable(rows=[(k, metrics[k]) for k in flat if k in metrics])]
        if "brief" in metrics:
            tables.append(MetricTable(title="brief", rows=list(metrics["brief"].items())))
        if "full" in metrics:
            header = ("GT length", "MR-mAP", "mAP@0.5", "mAP@0.75", "R1@0.5", "R1@0.7")
            rows = [
                (split, m["MR-mAP"]["average"], m["MR-mAP"]["0.5"], m["MR-mAP"]["0.75"],
                 m["MR-R1"]["0.5"], m["MR-R1"]["0.7"])
                for split, m in ((s, metrics[s]) for s in LENGTH_RANGES)
            ]  # fmt: skip
            tables.append(MetricTable(title="by GT window length", header=header, rows=rows))
        hl = [f"HL-min-{name}" for name in SALIENCY_MINIMA if f"HL-min-{name}" in metrics]
        if hl:
            tables.append(
                MetricTable(
                    title="highlight detection",
                    header=("min saliency", "HL-mAP", "HL-Hit1"),
                    rows=[(k, metrics[k]["HL-mAP"], metrics[k]["HL-Hit1"]) for k in hl],
                )
            )
        return tables


def _mr_brief(mr: Mapping[str, Any]) -> dict[str, Any]:
    """The official ``brief`` entries of moment retrieval."""
    return {
        "MR-full-mAP": mr["full"]["MR-mAP"]["average"],
        "MR-full-mAP@0.5": mr["full"]["MR-mAP"]["0.5"],
        "MR-full-mAP@0.75": mr["full"]["MR-mAP"]["0.75"],
        "MR-short-mAP": mr["short"]["MR-mAP"]["average"],
        "MR-middle-mAP": mr["middle"]["MR-mAP"]["average"],
        "MR-long-mAP": mr["long"]["MR-mAP"]["average"],
        "MR-full-R1@0.5": mr["full"]["MR-R1"]["0.5"],
        "MR-full-R1@0.7": mr["full"]["MR-R1"]["0.7"],
    }


def _saliency_truth(d: Mapping[str, Any]) -> dict[str, Any]:
    """A query's highlight ground truth (``relevant_clip_ids``, ``saliency_scores``), checked
    against the clip grid; ``{}`` for a query without it (the test split)."""
    if "saliency_scores" not in d and "relevant_clip_ids" not in d:
        return {}
    ids = [int(i) for i in d["relevant_clip_ids"]]
    scores = [[float(v) for v in row] for row in d["saliency_scores"]]
    clips = clip_count(float(d["duration"]))
    if len(ids) != len(scores) or any(len(row) != 3 for row in scores):
        raise ValueError(f"{len(ids)} relevant_clip_ids but {len(scores)} saliency_scores rows "
                         "(each of 3 annotator scores)")  # fmt: skip
    if any(not 0 <= i < clips for i in ids):
        raise ValueError(f"relevant_clip_ids {ids} outside the {clips} clips of the video")
    return {"relevant_clip_ids": ids, "saliency_scores": scores}


def _scores(value: object) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in value
        )
    )


def _windows_only(results: Mapping[str, SampleResult]) -> dict[str, SampleResult]:
    """The results with each prediction reduced to its window list (what the moment rows take)."""
    return {
        key: r.model_copy(update={"prediction": r.prediction[WINDOWS]})
        if r.ok and isinstance(r.prediction, dict)
        else r
        for key, r in results.items()
    }


BENCHMARK = QVHighlights()
