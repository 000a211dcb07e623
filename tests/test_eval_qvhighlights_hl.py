"""QVHighlights highlight detection: the official HL figures from ``pred_saliency_scores``, and an
``eval run`` that predicts one saliency score per 2 s clip.

Every expected number below was computed by running the official code (jayleicn/moment_detr at
commit b7e553ac3b0c898ee6b85e03ee507c064eab89ca, ``standalone_eval/eval.py``: ``eval_submission``
with ``match_number=False``, or ``eval_highlight`` alone; sklearn 1.9.1, numpy 2.4.6) on the real
val annotations and on prediction files derived from the official sample predictions as
:func:`variant` says; the full sample file's figures are the official
``sample_val_preds_metrics_raw.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from llm_support import tiny_model_dir, vllm_url
from typer.testing import CliRunner

from vidagent.cli.eval import app
from vidagent.evals import EvalError, SampleResult, benchmark
from vidagent.evals.highlights import get_ap, precision_recall_curve
from vidagent.evals.report import summarize
from vidagent.evals.saliency import clip_saliency, lexical_relevance
from vidagent.evals.sources import captions_timeline

__all__ = ["tiny_model_dir", "vllm_url"]

DATA = Path(__file__).resolve().parent / "data" / "qvhighlights"
ANN = DATA / "highlight_val_release.jsonl"
PREDS = DATA / "sample_val_preds.jsonl"
HL_KEYS = ("HL-min-Fair", "HL-min-Good", "HL-min-VeryGood")


def invoke(args: list[str]) -> Any:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def score(predictions: Path) -> dict[str, Any]:
    out = invoke(["score", "qvhighlights", "--annotations", str(ANN), "--predictions",
                  str(predictions)])  # fmt: skip
    return json.loads(out.stdout)


def variant(name: str) -> list[dict[str, Any]]:
    """The official sample predictions, changed: ``coarse`` every saliency score rounded to one
    decimal (ties), all 1,550 queries; ``cut`` the first 200 queries, scores of the first 30 clips
    only (the rest padded with 0); ``past`` the first 200, a score of 10 appended past the clip
    grid (hit@1 never hits, AP unchanged); ``constant`` the first 100, every score 0."""
    rows = [json.loads(x) for x in PREDS.read_text().splitlines()]
    keep = {"coarse": len(rows), "cut": 200, "past": 200, "constant": 100}[name]
    for row in rows[:keep]:
        row["pred_saliency_scores"] = _changed(name, row["pred_saliency_scores"])
    return rows[:keep]


def _changed(name: str, s: list[float]) -> list[float]:
    if name == "coarse":
        return [round(v, 1) for v in s]
    if name == "cut":
        return s[:30]
    if name == "past":
        return [*s, 10.0]
    return [0.0] * len(s)


# The official HL figures (HL-mAP, HL-Hit1) for Fair, Good, VeryGood of each variant.
OFFICIAL = {
    "coarse": [(64.17, 66.45), (54.15, 64.52), (32.46, 55.29)],
    "cut": [(49.7, 42.5), (41.48, 42.0), (24.47, 37.5)],
    "past": [(67.53, 0.0), (57.01, 0.0), (33.8, 0.0)],
    "constant": [(25.68, 20.0), (19.82, 19.0), (10.65, 11.0)],
}


def hl(metrics: dict[str, Any]) -> list[tuple[float, float]]:
    return [(metrics[k]["HL-mAP"], metrics[k]["HL-Hit1"]) for k in HL_KEYS]


def test_sample_predictions_reproduce_the_whole_official_output() -> None:
    metrics = score(PREDS)
    official = json.loads((DATA / "sample_val_preds_metrics_raw.json").read_text())
    for key, value in official.items():
        assert metrics[key] == value, key
    assert list(metrics["brief"]) == list(official["brief"])  # the official key order too
    assert metrics["brief"]["HL-min-VeryGood-mAP"] == 35.65


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_changed_predictions_match_the_official_code(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in variant(name)))
    metrics = score(path)
    assert hl(metrics) == OFFICIAL[name]
    brief = metrics["brief"]
    assert [brief[f"{k}-{m}"] for k in HL_KEYS for m in ("mAP", "Hit1")] == [
        v for pair in OFFICIAL[name] for v in pair
    ]


def test_get_ap_quirks_on_hand_checked_cases() -> None:
    y = np.array([1.0, 0.0, 1.0, 0.0])
    # positives ranked 1st and 3rd. The curve, lowest threshold first: precision 1/2, 2/3, 1/2, 1
    # (then the final point 1) at recall 1, 1, 1/2, 1/2 (then 0); the official "interpolation" is
    # a running max from that end (1/2, 2/3, 2/3, 1, 1), the AP the mean where recall drops: 2/3, 1
    assert get_ap(y, np.array([0.9, 0.8, 0.7, 0.1])) == pytest.approx((1 + 2 / 3) / 2)
    assert get_ap(np.zeros(3), np.array([1.0, 2.0, 3.0])) == 0.0  # no positive clip
    assert get_ap(np.ones(3), np.array([1.0, 2.0, 3.0])) == 1.0
    assert get_ap(y, np.zeros(4)) == 0.5  # all tied: the positive rate
    precision, recall = precision_recall_curve(y, np.array([0.9, 0.8, 0.7, 0.1]))
    assert recall.tolist() == [1.0, 1.0, 0.5, 0.5, 0.0]
    assert precision.tolist() == pytest.approx([0.5, 2 / 3, 0.5, 1.0, 1.0])


def test_bad_saliency_predictions_and_annotations_name_the_line(tmp_path: Path) -> None:
    qvh = benchmark("qvhighlights")
    path = tmp_path / "p.jsonl"
    row = {"qid": 1, "pred_relevant_windows": [[0, 2, 1.0]]}
    path.write_text(json.dumps(row) + "\n" + json.dumps({**row, "qid": 2,
                                                          "pred_saliency_scores": []}))  # fmt: skip
    with pytest.raises(EvalError, match="line 2: pred_saliency_scores"):
        qvh.read_predictions(path)
    path.write_text(json.dumps({**row, "pred_saliency_scores": [0.1, "x"]}))
    with pytest.raises(EvalError, match="line 1: pred_saliency_scores"):
        qvh.read_predictions(path)
    ann = tmp_path / "a.jsonl"
    query = {"qid": 1, "query": "q", "vid": "v", "duration": 10, "relevant_windows": [[0, 2]],
             "relevant_clip_ids": [5], "saliency_scores": [[1, 2, 3]]}  # fmt: skip
    ann.write_text(json.dumps(query))
    with pytest.raises(EvalError, match=r"line 1: .*relevant_clip_ids \[5\] outside the 5 clips"):
        qvh.load_samples(ann)


def test_clip_saliency_weights_overlap_and_falls_back_to_lexical_overlap() -> None:
    timeline = captions_timeline("v", [
        {"start": 0, "end": 3, "caption": "A woman opens a cup of noodles"},
        {"start": 3, "end": 9, "caption": "a man walks in"},
    ])  # fmt: skip
    query = "Woman opens a cup of noodles and puts in water."
    # words that count: woman opens cup noodles and puts water (7); "a", "of", "in" do not
    assert lexical_relevance(timeline, query) == [4 / 7, 0.0]
    # 11 s: 5 clips; [2, 4) is half each segment; [8, 10) half covered; the timeline ends at 9
    assert clip_saliency(timeline, query, 11.0) == [
        round(4 / 7, 6), round(2 / 7, 6), 0.0, 0.0, 0.0,
    ]  # fmt: skip
    assert clip_saliency(timeline, query, 11.0, [0.2, 1.0]) == [0.2, 0.6, 1.0, 1.0, 1.0]
    assert clip_saliency(timeline, query, 14.0, [0.2, 1.0])[-2:] == [0.0, 0.0]  # past the end
    with pytest.raises(ValueError, match="3 relevance scores for 2 segments"):
        clip_saliency(timeline, query, 11.0, [0.1, 0.2, 0.3])


def test_submission_rows_carry_saliency_and_a_failed_query_scores_constant(
    tmp_path: Path,
) -> None:
    qvh = benchmark("qvhighlights")
    samples = qvh.load_samples(ANN)[:3]
    saliency = [0.0] * 75
    saliency[41] = 1.0
    results = {
        samples[0].key: SampleResult(
            key=samples[0].key, video_id=samples[0].video_id, ok=True, valid=True,
            prediction={"pred_relevant_windows": [[82.0, 150.0, 1.0]],
                        "pred_saliency_scores": saliency},
        ),
        samples[1].key: SampleResult(key=samples[1].key, video_id=samples[1].video_id, ok=False,
                                     error="TaskError: x", error_kind="content"),
        # a record of a run before saliency was predicted: a bare window list
        samples[2].key: SampleResult(key=samples[2].key, video_id=samples[2].video_id, ok=True,
                                     valid=True, prediction=[[56.0, 76.0, 1.0]]),
    }  # fmt: skip
    summary = summarize(qvh, samples, results, wall_s=1.0, ran=3, run_dir=tmp_path)
    rows = [json.loads(x) for x in (tmp_path / "submission.jsonl").read_text().splitlines()]
    by_qid = {r["qid"]: r for r in rows}
    assert by_qid["2579"]["pred_saliency_scores"] == saliency
    assert by_qid["5071"]["pred_saliency_scores"] == [0.0] * 75
    assert by_qid["5071"]["pred_relevant_windows"] == [[0.0, 0.0, 0.0]]
    assert "pred_saliency_scores" not in by_qid["5342"]
    assert by_qid["5342"]["pred_relevant_windows"] == [[56.0, 76.0, 1.0]]
    # HL over the two rows with saliency: clip 41 of 2579 is Fair (annotator 3 gave it 2), the
    # constant row's top clip 0 of 5071 is not relevant
    assert summary["metrics"]["HL-min-Fair"]["HL-Hit1"] == 50.0
    assert summary["metrics"]["HL-min-Good"]["HL-Hit1"] == 0.0
    report = (tmp_path / "report.md").read_text()
    assert "### highlight detection" in report and "| HL-min-Fair |" in report


# Two real val queries (the first two lines of the annotations) with timelines written for them:
# the matching segment covers exactly the GT window. 5071's caption shares no word with its query,
# so only the text embedder can find it.
TIMELINES = {
    "NUsG9BgSes0_210.0_360.0": [
        {"start": 0, "end": 82, "caption": "a man repairs a bicycle in a garage"},
        {
            "start": 82,
            "end": 150,
            "caption": "a girl and her mother cook while talking on facetime",
        },
    ],
    "NUsG9BgSes0_60.0_210.0": [
        {"start": 0, "end": 118, "caption": "a dog runs across a snowy field"},
        {
            "start": 118,
            "end": 136,
            "caption": "lady at the table with earphones typing on a notebook",
        },
        {"start": 136, "end": 150, "caption": "city street at night with cars"},
    ],
}
MATCHING = {"2579": range(41, 75), "5071": range(59, 68)}  # the matching segment's clips
# Official eval_highlight on those two queries with 1 on the matching clips and 0 elsewhere (only
# the ranking counts, so any lower score elsewhere gives the same).
RUN_OFFICIAL = [(88.83, 100.0), (70.7, 50.0), (15.14, 0.0)]


def test_run_predicts_a_score_per_clip_and_scores_the_official_hl(
    vllm_url: str, tmp_path: Path
) -> None:
    lines = ANN.read_text().splitlines()[:2]
    ann = tmp_path / "highlight_val_release.jsonl"
    ann.write_text("\n".join(lines) + "\n")
    timelines = tmp_path / "timelines"
    timelines.mkdir()
    for vid, captions in TIMELINES.items():
        timeline = captions_timeline(vid, captions)
        (timelines / f"{vid}.json").write_text(timeline.model_dump_json())
    query = json.loads(lines[1])["query"]
    assert lexical_relevance(captions_timeline("v", TIMELINES[json.loads(lines[1])["vid"]]),
                             query) == [0.0, 0.0, 0.0]  # fmt: skip
    out = tmp_path / "run"
    invoke(["run", "qvhighlights", "--annotations", str(ann), "--timelines", str(timelines),
            "--out", str(out), "--llm-url", vllm_url, "--max-timeline-chars", "400",
            "--no-cache", "--no-progress"])  # fmt: skip
    rows = {
        r["qid"]: r for r in map(json.loads, (out / "submission.jsonl").read_text().splitlines())
    }
    assert sorted(rows) == ["2579", "5071"]
    for qid, clips in MATCHING.items():
        scores = rows[qid]["pred_saliency_scores"]
        assert len(scores) == 75  # 150 s: one score per 2 s clip
        top = [i for i, v in enumerate(scores) if v == max(scores)]
        assert top == list(clips), (qid, scores)
        assert max(scores) == 1.0 and min(scores) == 0.0  # min-max scaled over the video
    summary = json.loads((out / "summary.json").read_text())
    assert hl(summary["metrics"]) == RUN_OFFICIAL
    scored = invoke(["score", "qvhighlights", "--annotations", str(ann), "--predictions",
                     str(out / "submission.jsonl")])  # fmt: skip
    assert json.loads(scored.stdout) == summary["metrics"]
