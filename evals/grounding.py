"""What the moment-retrieval benchmarks share: moment_detr-style prediction rows, top-1 recall and
mean IoU, the localization step (metrics proper in :mod:`vidagent.evals.moments`).

A prediction row is ``{"qid", "query", "vid", "pred_relevant_windows": [[st, ed, score], ...]}``
(best first; ``score`` optional), one JSON object per line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidagent.evals.benchmark import (
    DEFAULT_PARAMS,
    Benchmark,
    Params,
    Solution,
    SolveContext,
    succeeded,
)
from vidagent.evals.common import EvalError, Sample, SampleResult, numbered_jsonl
from vidagent.evals.moments import mean_iou, recall_at_one

if TYPE_CHECKING:
    from vidagent.core.records import Timeline

MomentRows = list[dict[str, Any]]


def read_moment_predictions(path: Path | str) -> MomentRows:
    """Prediction rows (module doc); a row without a qid or with a window that is not
    ``[start, end]`` or ``[start, end, score]`` numbers, or a qid predicted twice, is an error
    naming the line."""
    numbered = numbered_jsonl(path)
    rows = [d for _, d in numbered]
    first: dict[str, int] = {}
    for line, d in numbered:
        if not isinstance(d, dict) or "qid" not in d or "pred_relevant_windows" not in d:
            raise EvalError(path, f"line {line}: needs qid and pred_relevant_windows")
        windows = d["pred_relevant_windows"]
        if not isinstance(windows, list) or not all(_window(w) for w in windows):
            raise EvalError(
                path, f"line {line}: pred_relevant_windows must be [[start, end, score], ...] "
                f"numbers (got {str(windows)[:60]})",
            )  # fmt: skip
        qid = str(d["qid"])
        if qid in first:
            raise EvalError(path, f"line {line}: qid {qid} again (first on line {first[qid]})")
        first[qid] = line
    return rows


def _window(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) in (2, 3)
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    )


def shared_queries(
    samples: Sequence[Sample], predictions: Sequence[Mapping[str, Any]]
) -> tuple[MomentRows, MomentRows]:
    """``(submission, ground truth)`` in moment_detr's layout, for the queries with GT windows
    that have a non-empty prediction (the official ``match_number=False`` rule)."""
    by_key = {s.key: s for s in samples if s.windows}
    sub = [
        {"qid": str(p["qid"]), "pred_relevant_windows": p["pred_relevant_windows"]}
        for p in predictions
        if str(p["qid"]) in by_key and p["pred_relevant_windows"]
    ]
    keys = {d["qid"] for d in sub}
    gt = [{"qid": k, "relevant_windows": s.windows} for k, s in by_key.items() if k in keys]
    return sub, gt


def score_moments(
    samples: Sequence[Sample], predictions: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """R1@{0.3,0.5,0.7} and mIoU of the top window (best-matching GT), over shared queries."""
    sub, gt = shared_queries(samples, predictions)
    out: dict[str, Any] = {}
    if sub:
        r1 = recall_at_one(sub, gt, [0.3, 0.5, 0.7])
        out.update({f"R1@{t}": v for t, v in r1.items()})
        out["mIoU"] = mean_iou(sub, gt)
    out.update({"n": len(sub), "missing": len({s.key for s in samples if s.windows}) - len(sub)})
    return out


def solve_moment(sample: Sample, timeline: Timeline, context: SolveContext) -> Solution:
    """Localize the sample's query with ``localize_query``: one window, clipped to the video (the
    run's text embedder, if any, ranks the segments and refines the window)."""
    from vidagent.tasks import localize_query

    loc = localize_query(
        timeline, sample.question, llm=context.llm, bank=context.bank, context=context.options,
        text_embedder=context.text_embedder,
    )  # fmt: skip
    end = min(loc.end, sample.duration) if sample.duration else loc.end
    start = min(loc.start, end)
    return Solution([[round(start, 3), round(end, 3), 1.0]], start < end, loc.run)


class MomentBenchmark(Benchmark[MomentRows]):
    """A moment-retrieval benchmark: one window per query, JSON Lines rows, top-1 metrics."""

    kind = "moment"

    def read_predictions(self, path: Path | str) -> MomentRows:
        return read_moment_predictions(path)

    def prediction_keys(self, predictions: MomentRows) -> set[str]:
        return {str(p["qid"]) for p in predictions}

    def solve(self, sample: Sample, timeline: Timeline, context: SolveContext) -> Solution:
        return solve_moment(sample, timeline, context)

    def submission(
        self, samples: Sequence[Sample], results: Mapping[str, SampleResult]
    ) -> MomentRows:
        """Rows for the answered queries; a failed one gets an empty window (IoU 0), so it stays
        in the denominator."""
        failed = [s for s in samples if s.key in results and not results[s.key].ok]
        rows = [(s, r.prediction) for s, r in succeeded(samples, results)]
        rows += [(s, [[0.0, 0.0, 0.0]]) for s in failed]
        return [
            {"qid": s.key, "query": s.question, "vid": s.video_id, "pred_relevant_windows": w}
            for s, w in rows
        ]

    def score(
        self, samples: Sequence[Sample], predictions: MomentRows, params: Params = DEFAULT_PARAMS
    ) -> dict[str, Any]:
        return score_moments(samples, predictions)
