"""Benchmark scorers against the official numbers on real files, and hand-built files in the
exact formats of the benchmarks that cannot be redistributed (EgoSchema, Ego4D LTA, IntentQA)."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vidagent.cli.eval import app
from vidagent.evals import EvalError, benchmark
from vidagent.evals.edit_distance import levenshtein, min_edit_distance

REAL = Path(__file__).resolve().parent / "data"

OFFICIAL_NEXTQA = {
    "Why": 46.99,
    "How": 44.22,
    "Bef&Aft": 49.53,
    "When": 52.49,
    "Cnt": 44.07,
    "Loc": 72.54,
    "Other": 55.41,
    "Acc_C": 46.26,
    "Acc_T": 50.74,
    "Acc_D": 59.33,
    "Acc": 49.74,
}


def real(path: str) -> Path:
    full = REAL / path
    if not full.exists():
        pytest.skip(f"real data {full} is absent")
    return full


def run_score(task: str, annotations: Path, predictions: Path) -> dict:
    result = CliRunner().invoke(
        app,
        ["score", task, "--annotations", str(annotations), "--predictions", str(predictions)],
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # stdout: the metrics; stderr: the coverage when partial


def test_nextqa_scores_exactly_the_official_eval_mc_numbers() -> None:
    metrics = run_score(
        "nextqa", real("nextqa/val.csv"), real("nextqa/HGA-bert-ft-h256-val-example.json")
    )
    assert {k: metrics[k] for k in OFFICIAL_NEXTQA} == OFFICIAL_NEXTQA
    assert metrics["n"] == 4996 and metrics["missing"] == 0


def test_nextqa_missing_prediction_counts_as_wrong(tmp_path: Path) -> None:
    preds = json.loads(real("nextqa/HGA-bert-ft-h256-val-example.json").read_text())
    right = [k for k, v in preds.items() if v["prediction"] == v["answer"]][:10]
    for key in right:
        del preds[key]
    path = tmp_path / "p.json"
    path.write_text(json.dumps(preds))
    metrics = run_score("nextqa", real("nextqa/val.csv"), path)
    assert metrics["missing"] == 10
    assert metrics["Acc"] == round(100 * (2485 - 10) / 4996, 2)  # 49.74% of 4996 is 2485 right


def test_qvhighlights_reproduces_every_official_mr_number() -> None:
    metrics = run_score(
        "qvhighlights",
        real("qvhighlights/highlight_val_release.jsonl"),
        real("qvhighlights/sample_val_preds.jsonl"),
    )
    official = json.loads(real("qvhighlights/sample_val_preds_metrics_raw.json").read_text())
    for split in ("full", "short", "middle", "long"):
        assert metrics[split] == official[split], split
    assert metrics["brief"] == official["brief"]  # the HL figures: tests/test_eval_qvhighlights_hl
    assert metrics["R1@0.3"] == 67.48 and metrics["mIoU"] == 49.21
    assert metrics["R1@0.5"] == official["brief"]["MR-full-R1@0.5"]


def test_charades_reannotated_csv_scores_against_best_matching_annotator(tmp_path: Path) -> None:
    samples = benchmark("charades_sta").load_samples(real("charades_sta_reannotated/test_00.csv"))
    assert len(samples) == 300 and all(len(s.windows) == 5 for s in samples)
    assert samples[0].video_id == "YAFX0" and samples[0].windows[0] == [55.0, 81.0]
    preds = tmp_path / "p.jsonl"
    # first sample: predict annotator 2's span exactly; the rest: an impossible span.
    rows = [{"qid": samples[0].key, "pred_relevant_windows": [[41, 76, 1.0]]}]
    rows += [{"qid": s.key, "pred_relevant_windows": [[1000, 1001]]} for s in samples[1:]]
    preds.write_text("\n".join(json.dumps(r) for r in rows))
    metrics = run_score("charades_sta", real("charades_sta_reannotated/test_00.csv"), preds)
    assert metrics["R1@0.7"] == round(100 / 300, 2) and metrics["n"] == 300
    assert metrics["mIoU"] == round(100 / 300, 2)


def test_charades_official_txt_format(tmp_path: Path) -> None:
    ann = tmp_path / "charades_sta_test.txt"
    ann.write_text("3MSZA 24.3 30.4##person turn a light on.\nAB12C 0 10##a person opens a door.\n")
    preds = tmp_path / "p.jsonl"
    preds.write_text(
        json.dumps({"qid": "0", "pred_relevant_windows": [[24.3, 30.4]]})
        + "\n"
        + json.dumps({"qid": "1", "pred_relevant_windows": [[0, 4.0]]})
    )
    metrics = run_score("charades_sta", ann, preds)
    assert metrics == {
        "R1@0.3": 100.0,
        "R1@0.5": 50.0,
        "R1@0.7": 50.0,
        "mIoU": 70.0,
        "n": 2,
        "missing": 0,
    }


def write_qa_csv(path: Path, rows: list[dict], video_column: str) -> None:
    cols = [video_column, "frame_count", "width", "height", "question", "answer", "qid", "type"]
    cols += [f"a{i}" for i in range(5)]
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=cols)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "x") for c in cols})


def test_intentqa_breakdown_why_how_before_after_total(tmp_path: Path) -> None:
    types = ["CW", "CW", "CH", "TP", "TN", "TN"]
    rows = [
        {"video_id": f"v{i}", "question": "why?", "answer": 1, "qid": i, "type": t}
        for i, t in enumerate(types)
    ]
    write_qa_csv(tmp_path / "test.csv", rows, "video_id")
    preds = {f"v{i}_{i}": {"prediction": p, "answer": 1} for i, p in enumerate([1, 0, 1, 1, 0, 1])}
    (tmp_path / "p.json").write_text(json.dumps(preds))
    metrics = run_score("intentqa", tmp_path / "test.csv", tmp_path / "p.json")
    assert metrics["Why"] == 50.0 and metrics["How"] == 100.0
    assert metrics["Bef&Aft"] == 66.67 and metrics["Total"] == 66.67


def test_egoschema_subset_accuracy_from_submission_csv(tmp_path: Path) -> None:
    questions = [
        {"q_uid": f"uid-{i}", "google_drive_id": "x", "question": f"q{i}?"}
        | {f"option {j}": f"opt {j}" for j in range(5)}
        for i in range(4)
    ]
    (tmp_path / "questions.json").write_text(json.dumps(questions))
    (tmp_path / "subset_answers.json").write_text(json.dumps({"uid-0": 3, "uid-2": 1}))
    (tmp_path / "sub.csv").write_text("q_uid,answer\nuid-0,3\nuid-1,0\nuid-3,2\n")
    metrics = run_score("egoschema", tmp_path / "questions.json", tmp_path / "sub.csv")
    assert metrics == {"subset_accuracy": 50.0, "n_subset": 2, "missing": 1, "answered": 3, "n": 4}


def reference_edit_distance(preds: list[list[int]], label: list[int], z: int) -> float:
    """The official lta_metrics.edit_distance for one window, with a plain DP Levenshtein."""

    def lev(a: list[int], b: list[int]) -> int:
        d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
        for i in range(len(a) + 1):
            d[i][0] = i
        for j in range(len(b) + 1):
            d[0][j] = j
        for i in range(1, len(a) + 1):
            for j in range(1, len(b) + 1):
                d[i][j] = min(
                    d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])
                )
        return d[-1][-1]

    return min(lev(p, label) / z for p in preds)


def lta_file(path: Path, clips: dict[str, list[tuple[int, int]]], labels: bool = True) -> None:
    items = []
    for clip, actions in clips.items():
        for idx, (verb, noun) in enumerate(actions):
            item = {
                "clip_uid": clip,
                "video_uid": f"video-{clip}",
                "action_idx": idx,
                "action_clip_start_sec": idx * 2.0,
                "action_clip_end_sec": idx * 2.0 + 1.5,
            }
            if labels:
                item |= {
                    "verb": f"v{verb}",
                    "noun": f"n{noun}",
                    "verb_label": verb,
                    "noun_label": noun,
                }
            items.append(item)
    path.write_text(json.dumps({"version": "v2", "split": "val", "clips": items}))


def test_lta_edit_distance_hand_computed() -> None:
    assert levenshtein("kitten", "sitting") == 3
    # truth 1 2 3 4; candidates: one substitution (1/4), a shift (2/4): min is 0.25
    assert min_edit_distance([[1, 9, 3, 4], [2, 3, 4, 5]], [1, 2, 3, 4], 4) == 0.25


def test_lta_scores_match_reference_edit_distance(tmp_path: Path) -> None:
    rng = random.Random(0)
    clips = {
        f"clip{c}": [(rng.randrange(4), rng.randrange(5)) for _ in range(8 + 20 + c)]
        for c in range(3)
    }
    lta_file(tmp_path / "fho_lta_val.json", clips)
    samples = benchmark("ego4d_lta").load_samples(tmp_path / "fho_lta_val.json")
    assert [s.key for s in samples] == [
        "clip0_7",
        "clip1_7",
        "clip1_8",
        "clip2_7",
        "clip2_8",
        "clip2_9",
    ]
    outputs = {}
    for s in samples:
        outputs[s.key] = {
            "verb": [[rng.randrange(4) for _ in range(20)] for _ in range(5)],
            "noun": [[rng.randrange(5) for _ in range(20)] for _ in range(5)],
        }
    (tmp_path / "outputs.json").write_text(json.dumps(outputs))
    metrics = run_score("ego4d_lta", tmp_path / "fho_lta_val.json", tmp_path / "outputs.json")
    ref = {"verb": 0.0, "noun": 0.0, "action": 0.0}
    for s in samples:
        out, tv, tn = outputs[s.key], s.target["verb"], s.target["noun"]
        ref["verb"] += reference_edit_distance(out["verb"], tv, 20)
        ref["noun"] += reference_edit_distance(out["noun"], tn, 20)
        acts = [
            [v * 5 + n for v, n in zip(vs, ns, strict=True)]
            for vs, ns in zip(*out.values(), strict=True)
        ]
        truth = [v * 5 + n for v, n in zip(tv, tn, strict=True)]
        ref["action"] += reference_edit_distance(acts, truth, 20)
    for name, total in ref.items():
        assert metrics[f"ED_{name}"] == round(total / len(samples), 4)
    assert metrics["n"] == 6 and metrics["missing"] == 0
    assert 0 < metrics["ED_verb"] < 1


def test_lta_unannotated_windows_use_the_same_keys(tmp_path: Path) -> None:
    clips = {"c": [(0, 0)] * 30}
    lta_file(tmp_path / "val.json", clips)
    lta_file(tmp_path / "test.json", clips, labels=False)
    lta = benchmark("ego4d_lta")
    assert [s.key for s in lta.load_samples(tmp_path / "test.json")] == [
        s.key for s in lta.load_samples(tmp_path / "val.json")
    ]


def test_bad_files_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(EvalError, match="unknown benchmark"):
        benchmark("nope")
    (tmp_path / "p.json").write_text("[1, 2]")
    with pytest.raises(EvalError, match=r"p\.json"):
        benchmark("nextqa").read_predictions(tmp_path / "p.json")
