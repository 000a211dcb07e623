"""Bad benchmark and prediction files are refused with the file and line (or key), never run or
scored silently: a CSV cut mid-row, short rows, blank options, duplicate ids, predictions that
are not option indices; and ``eval score`` with a prediction file that answers none of the
annotations exits non-zero (partial coverage is scored and shown)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vidagent.cli.eval import app
from vidagent.evals import EvalError, benchmark

HEADER = ["video", "frame_count", "width", "height", "question", "answer", "qid", "type",
          "a0", "a1", "a2", "a3", "a4"]  # fmt: skip


def row(video: str, qid: int, answer: int = 0, options: tuple[str, ...] = ()) -> list[str]:
    opts = list(options or ("plays", "runs", "sits", "eats", "jumps"))
    return [video, "300", "320", "240", "what does the child do", str(answer), str(qid), "CW",
            *opts]  # fmt: skip


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def load(path: Path) -> None:
    benchmark("nextqa").load_samples(path)


def test_qa_csv_rows_cut_short_blank_or_repeated_are_refused_by_line(tmp_path: Path) -> None:
    good = write_csv(tmp_path / "good.csv", [row("v1", 0), row("v1", 1), row("v2", 0)])
    assert [s.key for s in benchmark("nextqa").load_samples(good)] == ["v1_0", "v1_1", "v2_0"]
    text = good.read_text()
    cut = tmp_path / "cut.csv"  # the file ends in the middle of its last row
    cut.write_text(text[: text.rindex("sits")])
    with pytest.raises(EvalError, match=r"cut\.csv: line 4: 11 of 13 fields \(the row is cut"):
        load(cut)
    quoted = tmp_path / "quoted.csv"  # cut inside a quoted field
    quoted.write_text(text + 'v3,300,320,240,"what does the')
    with pytest.raises(EvalError, match=r"quoted\.csv: line 5: not a readable CSV row"):
        load(quoted)
    blank = write_csv(tmp_path / "blank.csv", [row("v1", 0), row("v1", 1, options=("a", "b",
                      "", "d", "e"))])  # fmt: skip
    with pytest.raises(EvalError, match=r"blank\.csv: line 3: option a2 is blank"):
        load(blank)
    twice = write_csv(tmp_path / "twice.csv", [row("v1", 0), row("v2", 0), row("v1", 0, 2)])
    with pytest.raises(EvalError, match=r"line 4: question 'v1_0' again \(first on line 2\)"):
        load(twice)
    long = write_csv(tmp_path / "long.csv", [[*row("v1", 0), "extra"]])
    with pytest.raises(EvalError, match=r"line 2: more fields than the header's 13"):
        load(long)


@pytest.mark.parametrize("value", ["B", 99, -1, True, 1.5])
def test_choice_predictions_must_be_option_indices(tmp_path: Path, value: object) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"v1_0": {"prediction": 0}, "v1_1": {"prediction": value}}))
    with pytest.raises(EvalError, match=r"'v1_1': prediction .* is not an option index 0-4"):
        benchmark("nextqa").read_predictions(path)


def test_egoschema_bad_answers_and_repeated_questions(tmp_path: Path) -> None:
    bench = benchmark("egoschema")
    for text, message in (("q_uid,answer\nq1,B\n", r"line 2: .*answer 0-4 \(got 'B'\)"),
                          ("q_uid,answer\nq1,99\n", r"line 2: .*answer 0-4 \(got '99'\)"),
                          ("q_uid,answer\nq1,1\nq1,2\n", r"line 3: q_uid 'q1' again"),
                          ("q_uid,answer\nq1\n", r"line 2: expected q_uid,answer")):  # fmt: skip
        path = tmp_path / "sub.csv"
        path.write_text(text)
        with pytest.raises(EvalError, match=message):
            bench.read_predictions(path)
    question = {"q_uid": "q1", "question": "why?", **{f"option {i}": f"o{i}" for i in range(5)}}
    questions = tmp_path / "questions.json"
    questions.write_text(json.dumps([question, {**question, "option 3": " "}]))
    with pytest.raises(EvalError, match=r"question 1 \(q1\): option 3 is blank"):
        bench.load_samples(questions)
    questions.write_text(json.dumps([question, question]))
    with pytest.raises(EvalError, match=r"question 1: q_uid 'q1' again"):
        bench.load_samples(questions)
    (tmp_path / "subset_answers.json").write_text(json.dumps({"q1": "B"}))
    questions.write_text(json.dumps([question]))
    with pytest.raises(EvalError, match=r"subset_answers\.json: 'q1': answer 'B'"):
        bench.load_samples(questions)


def test_moment_files_with_repeated_queries_or_bad_windows(tmp_path: Path) -> None:
    query = {"qid": 1, "query": "a door opens", "duration": 10, "vid": "v",
             "relevant_windows": [[0, 4]]}  # fmt: skip
    ann = tmp_path / "ann.jsonl"
    ann.write_text(json.dumps(query) + "\n\n" + json.dumps(query) + "\n")
    with pytest.raises(EvalError, match=r"line 3: qid 1 again \(first on line 1\)"):
        benchmark("qvhighlights").load_samples(ann)
    preds = tmp_path / "preds.jsonl"
    for rows, message in (([{"qid": 1, "pred_relevant_windows": [["a", 2]]}], "line 1: pred_"),
                          ([{"qid": 1, "pred_relevant_windows": [[0, 2, 1]]},
                            {"qid": 1, "pred_relevant_windows": [[0, 3]]}],
                           r"line 2: qid 1 again")):  # fmt: skip
        preds.write_text("".join(json.dumps(r) + "\n" for r in rows))
        with pytest.raises(EvalError, match=message):
            benchmark("charades_sta").read_predictions(preds)
    charades = tmp_path / "test.csv"
    charades.write_text("HITId,video_id,description,start,end\nH1,V1.mp4,a door opens,0\n")
    with pytest.raises(EvalError, match=r"test\.csv: line 2: the row does not have the header"):
        benchmark("charades_sta").load_samples(charades)


def test_lta_repeated_actions_and_predictions_that_are_not_indices(tmp_path: Path) -> None:
    action = {"clip_uid": "c", "video_uid": "v", "verb": "take", "noun": "cup",
              "verb_label": 0, "noun_label": 0, "action_clip_start_sec": 0.0,
              "action_clip_end_sec": 1.0}  # fmt: skip
    clips = [{**action, "action_idx": i} for i in range(10)] + [{**action, "action_idx": 4}]
    ann = tmp_path / "fho_lta_val.json"
    ann.write_text(json.dumps({"clips": clips}))
    with pytest.raises(EvalError, match=r"clips\[10\]: action 4 of clip c again \(first: clips"):
        benchmark("ego4d_lta").load_samples(ann)
    preds = tmp_path / "outputs.json"
    preds.write_text(json.dumps({"c_7": {"verb": [["take"]], "noun": [[0]]}}))
    with pytest.raises(EvalError, match=r"'c_7': verb and noun must be K lists of Z taxonomy"):
        benchmark("ego4d_lta").read_predictions(preds)


def test_score_with_no_matching_key_fails_and_partial_coverage_is_shown(tmp_path: Path) -> None:
    ann = write_csv(tmp_path / "val.csv", [row("v1", 0), row("v1", 1), row("v2", 0)])
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"x9_0": {"prediction": 0}, "x9_1": {"prediction": 1}}))
    args = ["score", "nextqa", "--annotations", str(ann), "--predictions"]
    none = CliRunner().invoke(app, [*args, str(other)])
    assert isinstance(none.exception, EvalError), none.output  # before: exit 0, n 3, missing 3
    assert "no prediction matches a sample" in str(none.exception)
    assert "['x9_0', 'x9_1']" in str(none.exception) and "'v1_0'" in str(none.exception)
    part = tmp_path / "part.json"
    part.write_text(json.dumps({"v1_0": {"prediction": 0}}))
    partial = CliRunner().invoke(app, [*args, str(part)])
    assert partial.exit_code == 0, partial.output
    assert json.loads(partial.stdout)["missing"] == 2
    assert "coverage: 1 of 3 samples have a prediction (2 missing" in partial.stderr
    full = tmp_path / "full.json"
    full.write_text(json.dumps({k: {"prediction": 0} for k in ("v1_0", "v1_1", "v2_0")}))
    complete = CliRunner().invoke(app, [*args, str(full)])
    assert complete.exit_code == 0 and complete.stderr == ""
