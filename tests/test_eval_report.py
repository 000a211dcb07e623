"""The end of a run, benchmark by benchmark, without an LLM: each benchmark's own submission file,
metric and report tables come out of the one generic ``summarize`` (results built by hand)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from vidagent.evals import SampleResult, benchmark
from vidagent.evals.common import Sample
from vidagent.evals.report import summarize


def result(sample: Sample, prediction: object = None, ok: bool = True) -> SampleResult:
    return SampleResult(
        key=sample.key, video_id=sample.video_id, ok=ok, prediction=prediction, valid=ok,
        error=None if ok else "LLMError: down", prompt_tokens=5,
    )  # fmt: skip


def test_nextqa_results_file_accuracy_and_type_table(tmp_path: Path) -> None:
    ann = tmp_path / "val.csv"
    cols = ["video", "frame_count", "width", "height", "question", "answer", "qid", "type"]
    with ann.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*cols, "a0", "a1", "a2", "a3", "a4"])
        writer.writeheader()
        for qid, qtype in enumerate(["CW", "CH", "TC"]):
            writer.writerow({"video": "v", "question": "why?", "answer": 2, "qid": qid,
                             "type": qtype} | {f"a{i}": f"opt {i}" for i in range(5)})  # fmt: skip
    nextqa = benchmark("nextqa")
    samples = nextqa.load_samples(ann)
    outcome = [result(samples[0], 2), result(samples[1], 0), result(samples[2], ok=False)]
    results = {r.key: r for r in outcome}
    summary = summarize(nextqa, samples, results, wall_s=1.0, ran=3, run_dir=tmp_path)
    preds = json.loads((tmp_path / "predictions.json").read_text())
    assert preds == {"v_0": {"prediction": 2, "answer": 2}, "v_1": {"prediction": 0, "answer": 2}}
    metrics = summary["metrics"]
    assert metrics["Acc"] == 33.33 and metrics["missing"] == 1 and metrics["When"] == 0.0
    report = (tmp_path / "report.md").read_text()
    assert "| Acc | 33.33 |" in report and "### by question type" in report
    assert "| Why | CW | 100.0 |" in report and "| Loc | DL | - |" in report
    assert "- `v_2`: LLMError: down" in report


def test_qvhighlights_failed_query_keeps_its_row_and_length_table(tmp_path: Path) -> None:
    ann = tmp_path / "val.jsonl"
    queries = [
        {"qid": 1, "query": "a door", "vid": "q", "duration": 20, "relevant_windows": [[0, 4]]},
        {"qid": 2, "query": "a cup", "vid": "q", "duration": 20, "relevant_windows": [[6, 10]]},
    ]
    ann.write_text("".join(json.dumps(q) + "\n" for q in queries))
    qvh = benchmark("qvhighlights")
    samples = qvh.load_samples(ann)
    results = {"1": result(samples[0], [[0.0, 4.0, 1.0]]), "2": result(samples[1], ok=False)}
    summary = summarize(qvh, samples, results, wall_s=1.0, ran=2, run_dir=tmp_path)
    rows = [json.loads(x) for x in (tmp_path / "submission.jsonl").read_text().splitlines()]
    assert [r["pred_relevant_windows"] for r in rows] == [[[0.0, 4.0, 1.0]], [[0.0, 0.0, 0.0]]]
    assert summary["metrics"]["R1@0.5"] == 50.0 and summary["metrics"]["n"] == 2
    report = (tmp_path / "report.md").read_text()
    assert "### by GT window length" in report and "| full | 50.0 |" in report
    assert "| middle | - | - | - | - | - |" in report  # no GT window of 10-30 s


def test_unannotated_lta_writes_the_submission_and_no_metrics(tmp_path: Path) -> None:
    lta = benchmark("ego4d_lta")
    samples = [Sample(key="c_7", video_id="c", kind="lta", observed_end=8.0)]
    outputs = {"verb": [[1, 2]], "noun": [[3, 4]]}
    summary = summarize(
        lta, samples, {"c_7": result(samples[0], outputs)}, wall_s=1.0, ran=1, run_dir=tmp_path
    )
    assert summary["metrics"] is None and summary["submission"] == "outputs.json"
    assert json.loads((tmp_path / "outputs.json").read_text()) == {"c_7": outputs}
    assert "No ground truth to score against" in (tmp_path / "report.md").read_text()


def test_egoschema_submission_is_the_kaggle_csv(tmp_path: Path) -> None:
    ego = benchmark("egoschema")
    samples = [Sample(key=f"u{i}", video_id=f"u{i}", kind="qa", answer=1) for i in range(2)]
    results = {"u0": result(samples[0], 1), "u1": result(samples[1], 3)}
    summary = summarize(ego, samples, results, wall_s=1.0, ran=2, run_dir=tmp_path)
    assert (tmp_path / "submission.csv").read_text() == "q_uid,answer\nu0,1\nu1,3\n"
    assert summary["metrics"]["subset_accuracy"] == 50.0
    assert ego.read_predictions(tmp_path / "submission.csv") == {"u0": 1, "u1": 3}
