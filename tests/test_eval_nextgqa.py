"""NExT-GQA: loading the real val files, the official metric (numbers computed by running the
official ``code/TempGQA/eval_ground.py`` and ``eval_next.py`` of doc-doc/NExT-GQA at commit
63772e0256ad9e34b83d6a108f1ba2041b924607 on the prediction files these tests build), the CLI's
``eval score --qa-predictions`` and an ``eval run`` on a scripted LLM that writes both official
files.

The prediction files are built by rule from the real spans (:func:`grounding_file`): exact GT
spans, shifted spans, zero-length spans inside and outside a GT span, reversed spans, whole-video
spans, widened spans, missing questions and a key of no question, so every branch of the official
``get_tIoU`` and ``eval_ground`` is taken. The official numbers were printed by::

    eval_ground(gsub, ground, qa, subset=None, gs=False)   # Acc&GQA ... TIoU@0.5, '{:.1f}'
    eval_next.eval_ground(pd.read_csv(csv), gsub, qa)      # Acc@QA per type, '{:.2f}'
"""

from __future__ import annotations

import asyncio
import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import vidagent.cli.eval as eval_cli
from vidagent.cli.eval import app
from vidagent.core.errors import ConfigError
from vidagent.evals import EvalError, benchmark
from vidagent.evals.benchmarks.nextgqa import overlap
from vidagent.llm import LLMClient
from vidagent.llm.types import LLMRequest, LLMResponse, Usage

DATA = Path(__file__).resolve().parent / "data" / "nextgqa"
UPSTREAM = "doc-doc/NExT-GQA@63772e0256ad9e34b83d6a108f1ba2041b924607"
SLICE_VIDEOS = 12

# eval_ground.py + eval_next.py on the full val files and the files of grounding_file/qa_file.
OFFICIAL_VAL = {"Acc&GQA": 36.6, "mIoP": 48.4, "IoP@0.3": 56.5, "IoP@0.5": 52.5, "mIoU": 32.4,
                "IoU@0.3": 40.1, "IoU@0.5": 35.3, "Acc@QA": 69.68}  # fmt: skip
OFFICIAL_VAL_BY_TYPE = {"Why": 69.47, "How": 71.10, "Bef&Aft": 68.31, "When": 71.61,
                        "Acc_C": 69.87, "Acc_T": 69.42}  # fmt: skip
# The same on the slice of the first SLICE_VIDEOS videos of gsub_val.json (slice_files).
OFFICIAL_SLICE = {"Acc&GQA": 38.5, "mIoP": 49.5, "IoP@0.3": 58.5, "IoP@0.5": 55.4, "mIoU": 33.2,
                  "IoU@0.3": 41.5, "IoU@0.5": 35.4, "Acc@QA": 70.27}  # fmt: skip
OFFICIAL_SLICE_BY_TYPE = {"Why": 69.70, "How": 100.00, "Bef&Aft": 60.00, "When": 75.00,
                          "Acc_C": 75.61, "Acc_T": 63.64}  # fmt: skip


def real_files() -> tuple[dict[str, Any], list[dict[str, str]], list[str]]:
    gsub_path, csv_path = DATA / "gsub_val.json", DATA / "val.csv"
    if not gsub_path.exists() or not csv_path.exists():
        pytest.skip(f"real data {DATA} is absent")
    with csv_path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    return json.loads(gsub_path.read_text()), rows, list(reader.fieldnames or [])


def slice_files(root: Path, count: int = SLICE_VIDEOS) -> tuple[Path, Path]:
    """``gsub_val.json`` and ``val.csv`` of the first ``count`` videos, in ``root``."""
    gsub, rows, fields = real_files()
    videos = list(gsub)[:count]
    root.mkdir(parents=True, exist_ok=True)
    (root / "gsub_val.json").write_text(json.dumps({v: gsub[v] for v in videos}))
    with (root / "val.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(r for r in rows if r["video_id"] in set(videos))
    return root / "gsub_val.json", root / "val.csv"


def grounding_file(gsub: dict[str, Any]) -> dict[str, list[float]]:
    """One span per question by the rule of the module doc (question ``i`` in gsub order)."""
    out: dict[str, list[float]] = {}
    i = 0
    for vid, anno in gsub.items():
        duration = anno["duration"]
        for qid, spans in anno["location"].items():
            first, last = spans[0], spans[-1]
            case, i = i % 8, i + 1
            mid = round((first[0] + first[1]) / 2, 1)
            span = [
                list(first),  # exact
                [last[0] + 2.0, last[1] + 2.0],  # shifted past the last GT span
                [mid, mid],  # zero-length inside: IoU 0, IoP 1
                [0.0, float(duration)],  # the whole video
                [last[1], last[0]],  # reversed: 0
                None,  # missing: left out
                [round(first[0] - (first[1] - first[0]) / 2, 1), first[1]],  # widened
                [duration + 1.0, duration + 1.0],  # zero-length outside: 0
            ][case]
            if span is not None:
                out[f"{vid}_{qid}"] = span
    out["1234567890_99"] = [0.0, 1.0]  # no such question: ignored
    return out


def qa_file(rows: list[dict[str, str]]) -> dict[str, dict[str, int]]:
    """QA results for every CSV row: every third wrong; every eleventh stores the prediction as
    its ``answer`` (the official code compares the file's own answer)."""
    out = {}
    for j, row in enumerate(rows):
        answer = [row[f"a{i}"] for i in range(5)].index(row["answer"])
        prediction = answer if j % 3 else (answer + 1) % 5
        stored = prediction if j % 11 == 0 else answer
        out[f"{row['video_id']}_{row['qid']}"] = {"prediction": prediction, "answer": stored}
    return out


def write_predictions(
    root: Path, gsub: dict[str, Any], rows: list[dict[str, str]]
) -> tuple[Path, Path]:
    ground, qa = root / "val_ground.json", root / "val-res.json"
    ground.write_text(json.dumps(grounding_file(gsub)))
    qa.write_text(json.dumps(qa_file(rows)))
    return ground, qa


def scored(root: Path, gsub_path: Path, csv_path: Path, annotations: Path) -> dict[str, Any]:
    gsub = json.loads(gsub_path.read_text())
    with csv_path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    ground, qa = write_predictions(root, gsub, rows)
    return benchmark("nextgqa").score_files(annotations, ground, companion=qa)


def test_the_real_val_files_load_from_either_one() -> None:
    gsub, rows, _ = real_files()
    bench = benchmark("nextgqa")
    samples = bench.load_samples(DATA / "gsub_val.json")
    assert samples == bench.load_samples(DATA / "val.csv")
    keys = [f"{v}_{q}" for v, anno in gsub.items() for q in anno["location"]]
    assert [s.key for s in samples] == keys and len(keys) == len(rows)  # gsub order, all rows
    by_key = {f"{r['video_id']}_{r['qid']}": r for r in rows}
    for sample in samples:
        row = by_key[sample.key]
        vid, qid = sample.key.split("_")
        assert sample.options[sample.answer or 0] == row["answer"].strip()
        assert sample.video_id == vid
        assert sample.question == row["question"] and sample.type == row["type"]
        assert sample.windows == gsub[vid]["location"][qid]
        assert sample.duration == gsub[vid]["duration"]
    assert max(len(s.windows) for s in samples) > 1  # several evidence spans occur


def test_scores_match_the_official_eval_ground_on_val(tmp_path: Path) -> None:
    metrics = scored(tmp_path, DATA / "gsub_val.json", DATA / "val.csv", DATA / "gsub_val.json")
    assert {k: metrics[k] for k in OFFICIAL_VAL} == OFFICIAL_VAL, UPSTREAM
    assert metrics["Acc@QA by type"] == OFFICIAL_VAL_BY_TYPE
    gsub, rows, _ = real_files()
    asked = {f"{v}_{q}" for v, anno in gsub.items() for q in anno["location"]}
    answered = asked & set(grounding_file(gsub))
    assert metrics["n"] == len(answered) and metrics["missing"] == len(asked) - len(answered)
    assert metrics["questions"] == len(rows) and metrics["missing_qa"] == 0


def test_scores_match_the_official_code_on_a_slice_read_from_the_csv(tmp_path: Path) -> None:
    gsub_path, csv_path = slice_files(tmp_path / "data")
    metrics = scored(tmp_path, gsub_path, csv_path, csv_path)
    assert {k: metrics[k] for k in OFFICIAL_SLICE} == OFFICIAL_SLICE, UPSTREAM
    assert metrics["Acc@QA by type"] == OFFICIAL_SLICE_BY_TYPE


def test_iou_and_iop_follow_the_official_get_tiou() -> None:
    assert overlap([0.0, 10.0], [5.0, 15.0]) == (5 / 15, 0.5)  # IoP: over the predicted span
    assert overlap([0.0, 10.0], [2.0, 4.0]) == (0.2, 1.0)
    assert overlap([2.0, 4.0], [3.0, 3.0]) == (0.0, 1.0)  # a point inside: IoU 0, IoP 1
    assert overlap([2.0, 4.0], [4.0, 4.0]) == (0.0, 1.0)  # the ends count as inside
    assert overlap([2.0, 4.0], [5.0, 5.0]) == (0.0, 0.0)
    iou, iop = overlap([2.0, 4.0], [6.0, 8.0])  # disjoint: negative, so never the maximum
    assert iou < 0 and iop < 0
    iou, iop = overlap([0.0, 10.0], [6.0, 3.0])  # reversed
    assert iou < 0 and iop == 0.0


def test_the_best_gt_span_counts_and_missing_questions_are_left_out(tmp_path: Path) -> None:
    gsub = {"v": {"duration": 30, "fps": 30, "location": {"0": [[0.0, 2.0], [10.0, 20.0]],
                                                          "1": [[5.0, 6.0]]}}}  # fmt: skip
    (tmp_path / "gsub_val.json").write_text(json.dumps(gsub))
    header = "video_id,frame_count,width,height,question,answer,qid,type,a0,a1,a2,a3,a4\n"
    rows = ["v,1,1,1,what first,a,0,CW,a,b,c,d,e\n", "v,1,1,1,what next,c,1,TN,a,b,c,d,e\n"]
    (tmp_path / "val.csv").write_text(header + "".join(rows))
    (tmp_path / "g.json").write_text(json.dumps({"v_0": [10.0, 15.0]}))  # v_1 not grounded
    qa = {"v_0": {"prediction": 0, "answer": 0}, "v_1": {"prediction": 3, "answer": 2}}
    (tmp_path / "qa.json").write_text(json.dumps(qa))
    bench = benchmark("nextgqa")
    metrics = bench.score_files(tmp_path / "gsub_val.json", tmp_path / "g.json",
                                companion=tmp_path / "qa.json")  # fmt: skip
    assert metrics["mIoU"] == 50.0 and metrics["mIoP"] == 100.0  # the second GT span
    assert metrics["Acc&GQA"] == 100.0 and metrics["n"] == 1 and metrics["missing"] == 1
    assert metrics["Acc@QA"] == 50.0  # over both questions
    (tmp_path / "qa.json").write_text(json.dumps({"v_1": {"prediction": 2}}))  # no "answer"
    metrics = bench.score_files(tmp_path / "gsub_val.json", tmp_path / "g.json",
                                companion=tmp_path / "qa.json")  # fmt: skip
    assert metrics["missing_qa"] == 1 and metrics["Acc@QA"] == 50.0  # v_1: the CSV's answer
    assert metrics["Acc&GQA"] == 0.0  # v_0 has no QA result: wrong


@pytest.mark.parametrize(
    ("name", "text", "cause"),
    [
        ("g.json", '{"v_0": [1, "x"]}', "is not [start, end] numbers"),
        ("g.json", "[[1, 2]]", "expected"),
        ("qa.json", '{"v_0": {"answer": 1}}', "prediction None is not an integer"),
        ("qa.json", '{"v_0": {"prediction": 1.5}}', "is not an integer"),
    ],
)
def test_bad_prediction_files_are_errors_naming_the_entry(
    tmp_path: Path, name: str, text: str, cause: str
) -> None:
    slice_files(tmp_path, 1)
    (tmp_path / "g.json").write_text("{}")
    (tmp_path / "qa.json").write_text("{}")
    (tmp_path / name).write_text(text)
    with pytest.raises(EvalError, match=re.escape(cause)):
        benchmark("nextgqa").read_prediction_files(tmp_path / "g.json", tmp_path / "qa.json")


def test_annotation_errors_name_the_file(tmp_path: Path) -> None:
    bench = benchmark("nextgqa")
    gsub_path, csv_path = slice_files(tmp_path, 2)
    csv_path.rename(tmp_path / "other.csv")
    with pytest.raises(EvalError, match=r"val\.csv: no such file"):
        bench.load_samples(gsub_path)
    with pytest.raises(EvalError, match=r"gsub_<split>\.json"):
        bench.load_samples(tmp_path / "spans.json")
    lines = (tmp_path / "other.csv").read_text().splitlines(keepends=True)
    csv_path.write_text(lines[0] + "".join(lines[2:]))  # one question's row is gone
    with pytest.raises(EvalError, match="has spans but no row"):
        bench.load_samples(gsub_path)
    bad = lines[1].split(",")
    bad[5] = "no such option"
    csv_path.write_text(lines[0] + ",".join(bad) + "".join(lines[2:]))
    with pytest.raises(EvalError, match=r"line 2: answer 'no such option' is none of a0\.\.a4"):
        bench.load_samples(csv_path)
    csv_path.write_text("".join(lines))
    with pytest.raises(EvalError, match="QA results"):  # one file is not enough to score
        bench.scored_files(gsub_path, gsub_path)


def test_cli_score_takes_the_qa_results_and_refuses_it_elsewhere(tmp_path: Path) -> None:
    gsub_path, csv_path = slice_files(tmp_path / "data")
    gsub = json.loads(gsub_path.read_text())
    with csv_path.open(newline="", encoding="utf-8") as fh:
        ground, qa = write_predictions(tmp_path, gsub, list(csv.DictReader(fh)))
    base = ["score", "nextgqa", "--annotations", str(gsub_path), "--predictions", str(ground)]
    result = CliRunner().invoke(app, [*base, "--qa-predictions", str(qa)])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert {k: metrics[k] for k in OFFICIAL_SLICE} == OFFICIAL_SLICE
    missing = metrics["missing"]
    assert missing > 0 and f"({missing} missing, left out of the grounding" in result.stderr
    alone = CliRunner().invoke(app, base)
    assert isinstance(alone.exception, ConfigError)
    assert "nextgqa needs --qa-predictions FILE" in str(alone.exception)
    other = ["score", "nextqa", "--annotations", str(csv_path), "--predictions", str(qa),
             "--qa-predictions", str(qa)]  # fmt: skip
    refused = CliRunner().invoke(app, other)
    assert isinstance(refused.exception, ConfigError)
    assert str(refused.exception) == "--qa-predictions does not apply to nextqa (only to nextgqa)"
    help_text = CliRunner().invoke(app, ["score", "--help"], env={"COLUMNS": "250"}).stdout
    assert "--qa-predictions" in help_text and "nextgqa" in help_text


class ScriptedLLM:
    """Answers the choice with ``C`` and the span with the 2nd..3rd shown segment tokens."""

    name = "scripted"

    def __init__(self) -> None:
        self.requests: list[LLMRequest] = []

    async def model_name(self) -> str:
        return "scripted"

    async def generate(self, request: LLMRequest) -> LLMResponse:
        self.requests.append(request)
        await asyncio.sleep(0)
        structured = request.structured
        assert structured is not None
        if structured.choices:
            text = "C"
        else:
            enum = (structured.json_schema or {})["properties"]["start"]["enum"]
            text = json.dumps({"start": enum[1], "end": enum[2]})
        usage = Usage(prompt_tokens=5, completion_tokens=2)
        return LLMResponse(texts=[text], finish_reasons=["stop"], usage=usage, model="scripted")

    async def close(self) -> None:
        pass


def test_eval_run_answers_grounds_and_writes_both_official_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gsub_path, csv_path = slice_files(tmp_path / "data", 3)
    bench = benchmark("nextgqa")
    samples = bench.load_samples(gsub_path)
    videos = list(json.loads(gsub_path.read_text()))
    captions = {  # 4 s captions over the first two videos; the third has none: it fails
        v: [{"start": t, "end": min(t + 4, s.duration or 0), "caption": f"scene {t}"}
            for t in range(0, int(s.duration or 0), 4)]
        for v in videos[:2] for s in samples if s.video_id == v
    }  # fmt: skip
    (tmp_path / "captions.json").write_text(json.dumps(captions))
    backend = ScriptedLLM()
    monkeypatch.setattr(eval_cli, "_llm", lambda *_args: LLMClient(backend, max_concurrency=4))
    out = tmp_path / "run"
    args = ["run", "nextgqa", "--annotations", str(csv_path), "--captions",
            str(tmp_path / "captions.json"), "--out", str(out), "--no-progress"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    ok = [s for s in samples if s.video_id in captions]
    failed = [s for s in samples if s.video_id not in captions]
    assert ok and failed
    assert len(backend.requests) == 2 * len(ok)  # one choice and one span request each
    sent = ["\n".join(m.content for m in r.messages) for r in backend.requests]
    assert all(any(s.question in text for text in sent) for s in ok)
    ground = json.loads((out / "predictions_ground.json").read_text())
    qa = json.loads((out / "predictions-res.json").read_text())
    assert set(ground) == set(qa) == {s.key for s in samples}
    for s in ok:  # the 2nd and 3rd 4-second segments; "C" is option 2
        assert ground[s.key] == [4.0, 12.0]
        assert qa[s.key] == {"prediction": 2, "answer": s.answer}
    for s in failed:
        assert ground[s.key] == [-1.0, -1.0] and qa[s.key] == {"prediction": -1, "answer": s.answer}
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {r["key"]: r["prediction"] for r in records if r["ok"]} == {
        s.key: {"answer": 2, "span": [4.0, 12.0]} for s in ok
    }
    assert all(r["prompt_tokens"] == 10 for r in records if r["ok"])  # both calls counted
    summary = json.loads((out / "summary.json").read_text())
    assert summary["submission"] == "predictions_ground.json"
    assert summary["other_files"] == ["predictions-res.json"]
    assert "`predictions-res.json`" in (out / "report.md").read_text()
    files = ["--predictions", str(out / "predictions_ground.json"),
             "--qa-predictions", str(out / "predictions-res.json")]  # fmt: skip
    rescored = CliRunner().invoke(
        app, ["score", "nextgqa", "--annotations", str(gsub_path), *files]
    )
    assert rescored.exit_code == 0, rescored.output
    assert json.loads(rescored.stdout) == summary["metrics"]
    assert summary["metrics"]["n"] == len(samples)  # the failures stay in the denominator
