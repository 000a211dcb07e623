"""The long-video multiple-choice suite: Video-MME, MLVU (dev), LVBench, LongVideoBench and the
EgoSchema full set, each on a small file in its release's exact schema (none of them may be
redistributed), scored against numbers worked out by hand from the official code:

- Video-MME: ``evaluation/eval_your_results.py``, BradyFU/Video-MME
  @4e7566d36f63121fc72f040654d6f38f83f30125 (``extract_characters_regex`` with its prefix
  list; a response without A-D leaves the denominators; per duration / domain / sub-category
  / task type);
- MLVU: ``evaluation/multiple_choice_evaluation/choice_bench.py``, JUNJIE99/MLVU
  @fd060c10a43ea48a35100a22688a927b8e531199 (``qa_template``: the last candidate equal to the
  answer; ``check_ans``; M-Avg = mean of the per-task accuracies);
- LVBench: ``lvbench/metrics/compute_accuracy.py``, THUDM/LVBench
  @f998d95541cd5f0953c52449b185c6467b9b099d (exact letter match, per question type, each type of
  a question counted);
- LongVideoBench: ``lmms_eval/tasks/longvideobench/utils.py``, EvolvingLMMs-Lab/lmms-eval
  @75571cfe0fa36ca5ec2e6aa2bb268f9d38295af3 (``parse_multi_choice_response``; per duration group
  and question category).

Then one ``vidagent eval run`` per benchmark against a scripted OpenAI-compatible server that
answers the *last* option letter the prompt offers (so a 5-option question gets ``E``): the
submission file each writes, the prompts sent, and the summary's metrics."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from eval_support import completion
from typer.testing import CliRunner

from vidagent.cli.eval import app
from vidagent.evals import EvalError, benchmark

# --- files in each release's schema ----------------------------------------------------------

VIDEOMME = [  # (question_id, duration, domain, sub_category, task_type, answer)
    ("001-1", "short", "Knowledge", "Humanity & History", "Object Reasoning", "A"),
    ("001-2", "short", "Knowledge", "Humanity & History", "Counting Problem", "B"),
    ("001-3", "short", "Knowledge", "Humanity & History", "Action Reasoning", "D"),
    ("301-1", "medium", "Film & Television", "Animation", "Counting Problem", "C"),
    ("301-2", "medium", "Film & Television", "Animation", "Object Reasoning", "C"),
    ("601-1", "long", "Sports Competition", "Basketball", "Counting Problem", "D"),
    ("601-2", "long", "Sports Competition", "Basketball", "Object Reasoning", "A"),
]
YOUTUBE = {"001": "fFjv93ACGo8", "301": "aB3_x-9QkLc", "601": "Zz0yY1xX2wW"}


def videomme_rows() -> list[dict[str, Any]]:
    """Rows of ``videomme/test-00000-of-00001.parquet`` (as its JSON export gives them)."""
    return [
        {"video_id": qid[:3], "duration": dur, "domain": dom, "sub_category": sub,
         "url": f"https://www.youtube.com/watch?v={YOUTUBE[qid[:3]]}", "videoID": YOUTUBE[qid[:3]],
         "question_id": qid, "task_type": task, "question": f"What happens in part {qid}?",
         "options": ["A. Apples.", "B. Bananas.", "C. Cherries.", "D. Dates."], "answer": ans}
        for qid, dur, dom, sub, task, ans in VIDEOMME
    ]  # fmt: skip


def videomme_files(root: Path) -> tuple[Path, Path]:
    """The annotation file and an official results file (output_test_template.json's shape)."""
    (root / "videomme").mkdir(parents=True)
    ann = root / "videomme" / "test.json"
    ann.write_text(json.dumps(videomme_rows()))
    (root / "subtitle").mkdir()
    (root / "subtitle" / "fFjv93ACGo8.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nhi\n")
    responses = {
        "001-1": "A",  # right
        "001-2": "The answer is B.",  # prefix dropped: B, right
        "001-3": "Answer: D",  # the first A-D anywhere is the A of "Answer": wrong (upstream)
        "301-1": "I cannot tell from the frames shown, sorry.",  # no A-D: left out
        "301-2": "(C) cherries",  # right
        "601-1": "B",  # wrong; 601-2 has no response at all: missing, wrong
    }
    videos: dict[str, dict[str, Any]] = {}
    for row in videomme_rows():
        if row["question_id"] not in responses:
            continue
        item = videos.setdefault(row["video_id"], {
            "video_id": row["video_id"], "duration_category": row["duration"],
            "video_category": row["domain"], "video_subcategory": row["sub_category"],
            "questions": []})  # fmt: skip
        item["questions"].append({
            "question_id": row["question_id"], "task_type": row["task_type"],
            "question": row["question"], "choices": row["options"], "answer": row["answer"],
            "response": responses[row["question_id"]]})  # fmt: skip
    preds = root / "results.json"
    preds.write_text(json.dumps(list(videos.values())))
    return ann, preds


def mlvu_files(root: Path) -> tuple[Path, Path]:
    """A dev ``json/`` folder with three task files, and a submission."""
    folder = root / "json"
    folder.mkdir()

    def q(video: str, qtype: str, candidates: list[str], answer: str) -> dict[str, Any]:
        return {"video": video, "duration": 246, "question": f"What about {video}?",
                "candidates": candidates, "answer": answer, "question_type": qtype}  # fmt: skip

    abcd = ["Yellow", "Red", "Green", "Blue"]
    (folder / "1_plotQA.json").write_text(json.dumps([
        q("movie101_66.mp4", "plotQA", abcd, "Yellow"),  # A
        q("movie101_66.mp4", "plotQA", abcd, "Red"),  # B
        q("xiaoliyu_6.mp4", "plotQA", abcd, "Blue"),  # D
    ]))  # fmt: skip
    (folder / "2_needle.json").write_text(json.dumps([
        q("needle_32.mp4", "findNeedle", ["Fishing", "Surfing", "Picnicking", ""], "Picnicking"),
        q("needle_4.mp4", "findNeedle", ["Fishing", "Catching the drone", "Swimming", "Diving"],
          "Catching a flying drone quadcopter"),  # no candidate: upstream's "@", never right
    ]))  # fmt: skip
    (folder / "6_anomaly_reco.json").write_text(json.dumps([
        q("surveil_22.mp4", "anomaly_reco", ["Shooting", "Fighting", "Arson", "Shooting"],
          "Shooting"),  # the last "Shooting": D
        q("surveil_134.mp4", "anomaly_reco", ["Normal", "Shooting", "Robbery", "Arson"], "Normal"),
    ]))  # fmt: skip
    (folder / "8_sub_scene.json").write_text(json.dumps([{"video": "x.mp4", "question": "?"}]))
    rows = [
        ("plotQA_0", "A"),
        ("plotQA_1", "(B) Red"),
        ("plotQA_2", "C"),
        ("needle_0", "C"),
        ("needle_1", "A"),
        ("anomaly_reco_0", "A"),
    ]  # anomaly_reco_1: missing
    preds = root / "mlvu_predictions.json"
    preds.write_text(json.dumps([
        {"question_id": k, "question_type": k.rsplit("_", 1)[0], "option": o} for k, o in rows
    ]))  # fmt: skip
    return folder, preds


def lvbench_question(uid: int, answer: str, types: list[str]) -> dict[str, Any]:
    return {"uid": uid, "question": f"What is shown at mark {uid}?\n(A) a cat\n(B) a dog\n"
            "(C) a bird\n(D) a fish", "answer": answer, "question_type": types,
            "time_reference": "00:15-00:19"}  # fmt: skip


def lvbench_files(root: Path) -> tuple[Path, Path]:
    """``video_info.meta.jsonl`` with two videos, and an answer file with one uid missing."""
    videos = [
        {"key": "Cm73ma6Ibcs", "type": "documentary", "video_info": {"duration_minutes": 61.2},
         "qa": [lvbench_question(1, "B", ["key information retrieval", "reasoning"]),
                lvbench_question(2, "C", ["temporal grounding"])]},
        {"key": "xB9mJ0vX1Qk", "type": "sports", "video_info": {"duration_minutes": 88.0},
         "qa": [lvbench_question(3, "A", ["entity recognition"]),
                lvbench_question(4, "D", ["reasoning"])]},
    ]  # fmt: skip
    ann = root / "video_info.meta.jsonl"
    ann.write_text("".join(json.dumps(v) + "\n" for v in videos))
    preds = root / "answers.json"
    preds.write_text(json.dumps({"1": "B", "2": "A", "3": "A"}))
    return ann, preds


def lvb_record(i: int, group: int, category: str, n: int, choice: int | None) -> dict[str, Any]:
    """One record of ``lvb_val.json`` (``lvb_test_wo_gt.json`` when ``choice`` is None)."""
    record = {
        "video_id": f"vid{i}xyz", "question": f"At the referred moment {i}, what is seen?",
        "question_wo_referring_query": "what is seen?",
        "candidates": ["a red hat", "a blue car", "a green tree", "a dog", "a book"][:n],
        "position": [10, 20], "topic_category": "NP-News-Programs", "question_category": category,
        "level": "L1-Perception", "id": f"vid{i}xyz_0", "video_path": f"vid{i}xyz.mp4",
        "subtitle_path": f"vid{i}xyz_en.json", "duration_group": group,
        "starting_timestamp_for_subtitles": 0, "duration": float(group), "view_count": 10,
    }  # fmt: skip
    if choice is not None:
        record["correct_choice"] = choice
    return record


LVB = [(0, 15, "S2E", 5, 4), (1, 60, "S2E", 4, 1), (2, 600, "T3O", 4, 0), (3, 600, "T3O", 4, 3),
       (4, 3600, "E2O", 4, 2)]  # fmt: skip


def lvb_files(root: Path) -> tuple[Path, Path]:
    ann = root / "lvb_val.json"
    ann.write_text(json.dumps([lvb_record(*r) for r in LVB]))
    preds = root / "lvb_submission.json"
    preds.write_text(json.dumps({
        "vid0xyz_0": "E",  # the fifth option: right
        "vid1xyz_0": "The best answer is B",  # right
        "vid2xyz_0": "no idea",  # no letter: upstream picks at random; here wrong (unparsed)
        "vid3xyz_0": "D. A book",  # D (not the A of "A book"): right; vid4xyz_0 missing
    }))  # fmt: skip
    return ann, preds


def egoschema_questions(root: Path, count: int = 3) -> Path:
    options = {f"option {j}": f"because {j}" for j in range(5)}
    questions = [
        {"q_uid": f"uid-{i}", "google_drive_id": "x", "question": f"Why {i}?"} | options
        for i in range(count)
    ]
    path = root / "questions.json"
    path.write_text(json.dumps(questions))
    (root / "subset_answers.json").write_text(json.dumps({"uid-0": 2}))  # must not be read
    return path


def run_score(name: str, annotations: Path, predictions: Path) -> dict[str, Any]:
    result = CliRunner().invoke(
        app, ["score", name, "--annotations", str(annotations), "--predictions", str(predictions)]
    )
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


# --- loaders and official scoring ------------------------------------------------------------


def test_videomme_loads_the_release_schema_with_videoid_files_and_subtitle_references(
    tmp_path: Path,
) -> None:
    ann, _ = videomme_files(tmp_path)
    samples = benchmark("videomme").load_samples(ann)
    first = samples[0]
    assert [s.key for s in samples] == [q[0] for q in VIDEOMME]
    assert first.video_id == "fFjv93ACGo8" and first.type == "Object Reasoning"
    assert first.options == ["Apples.", "Bananas.", "Cherries.", "Dates."]  # "A. " dropped
    assert first.target["choices"][0] == "A. Apples." and first.target["duration"] == "short"
    assert first.target["subtitle"] == str(tmp_path / "subtitle" / "fFjv93ACGo8.srt")
    assert samples[3].target["subtitle"] is None  # this video has no .srt in the release
    assert [s.answer for s in samples] == ["ABCD".index(q[5]) for q in VIDEOMME]


def test_videomme_scores_as_eval_your_results_per_duration_and_category(tmp_path: Path) -> None:
    ann, preds = videomme_files(tmp_path)
    metrics = run_score("videomme", ann, preds)  # `vidagent eval score` through the CLI
    # counted: 6 (301-1 has no letter); right: 001-1, 001-2, 301-2
    assert metrics["Overall"] == 50.0 and metrics["n"] == 7
    assert metrics["missing"] == 1 and metrics["unanswered"] == 1
    assert (metrics["short"], metrics["medium"], metrics["long"]) == (66.67, 100.0, 0.0)
    assert {k: v for k, v in metrics["task_type"].items() if v is not None} == {
        "Object Reasoning": 66.67,  # 001-1, 301-2 right; 601-2 missing
        "Counting Problem": 50.0,  # 001-2 right, 601-1 wrong (301-1 left out)
        "Action Reasoning": 0.0,
    }
    assert {k: v for k, v in metrics["domain"].items() if v is not None} == {
        "Knowledge": 66.67, "Film & Television": 100.0, "Sports Competition": 0.0}  # fmt: skip
    assert metrics["sub_category"]["Animation"] == 100.0
    assert metrics["sub_category"]["Basketball"] == 0.0
    short = metrics["per_duration"]["short"]["task_type"]
    assert short["Object Reasoning"] == 100.0 and short["Action Reasoning"] == 0.0
    assert metrics["per_duration"]["long"]["task_type"]["Object Reasoning"] == 0.0
    tables = benchmark("videomme").report(metrics)
    by_task = next(t for t in tables if t.title == "by task_type")
    assert by_task.header == ("task_type", "all", "short", "medium", "long")
    assert ("Counting Problem", 50.0, 100.0, None, 0.0) in by_task.rows and len(by_task.rows) == 3


def test_videomme_reads_the_parquet_release_itself(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "test-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(videomme_rows()), path)
    samples = benchmark("videomme").load_samples(path)
    assert len(samples) == 7 and samples[1].options[1] == "Bananas." and samples[1].answer == 1


def test_videomme_rejects_an_unknown_category_and_a_bad_answer(tmp_path: Path) -> None:
    rows = videomme_rows()
    path = tmp_path / "test.jsonl"
    cases = [({"task_type": "Vibes"}, r"record 2 \(001-3\): unknown task_type"),
             ({"answer": "E"}, r"answer 'E' is not one of the option letters A-D")]  # fmt: skip
    for change, message in cases:
        path.write_text("".join(json.dumps(r | change if i == 2 else r) + "\n"
                                for i, r in enumerate(rows)))  # fmt: skip
        with pytest.raises(EvalError, match=message):
            benchmark("videomme").load_samples(path)


def test_mlvu_scores_as_choice_bench_with_its_quirks(tmp_path: Path) -> None:
    folder, preds = mlvu_files(tmp_path)
    bench = benchmark("mlvu")
    samples = bench.load_samples(folder)
    assert [s.key for s in samples][:4] == ["plotQA_0", "plotQA_1", "plotQA_2", "needle_0"]
    assert len(samples) == 7  # 8_sub_scene.json (generation) is not read
    assert samples[0].video_id == "movie101_66" and samples[3].type == "needle"  # not findNeedle
    assert samples[4].answer is None and samples[5].answer == 3  # no candidate; last "Shooting"
    assert samples[3].options[3] == ""  # an empty candidate is kept, as released
    metrics = bench.score_files(folder, preds)
    # plotQA 2/3 (A right, "(B) Red" -> B right, C wrong); needle 1/2; anomaly_reco 0/2
    assert (metrics["plotQA"], metrics["needle"], metrics["anomaly_reco"]) == (66.67, 50.0, 0.0)
    assert metrics["M-Avg"] == 38.89  # (2/3 + 1/2 + 0) / 3, from the unrounded accuracies
    assert metrics["missing"] == 1 and metrics["no_answer"] == 1 and metrics["n"] == 7
    single = bench.load_samples(folder / "2_needle.json")
    assert [s.key for s in single] == ["needle_0", "needle_1"]


def test_lvbench_scores_as_compute_accuracy_per_question_type(tmp_path: Path) -> None:
    ann, preds = lvbench_files(tmp_path)
    bench = benchmark("lvbench")
    samples = bench.load_samples(ann)
    assert [(s.key, s.video_id) for s in samples][:2] == [
        ("1", "Cm73ma6Ibcs"),
        ("2", "Cm73ma6Ibcs"),
    ]
    assert samples[0].question == "What is shown at mark 1?"
    assert samples[0].options == ["a cat", "a dog", "a bird", "a fish"] and samples[0].answer == 1
    metrics = bench.score_files(ann, preds)
    # right: uid 1 (KIR, Rea) and 3 (ER); uid 2 wrong (TG); uid 4 missing (Rea): wrong here
    assert metrics["Overall"] == 50.0 and metrics["missing"] == 1
    assert (metrics["KIR"], metrics["Rea"], metrics["TG"], metrics["ER"]) == (
        100.0,
        50.0,
        0.0,
        100.0,
    )
    assert metrics["EU"] is None and metrics["Sum"] is None
    complete = tmp_path / "complete.json"
    complete.write_text(json.dumps({"1": "B", "2": "A", "3": "A", "4": "D"}))
    full = bench.score_files(ann, complete)  # upstream: right 3 of 4, Rea 2 of 2
    assert full["Overall"] == 75.0 and full["Rea"] == 100.0 and full["missing"] == 0


def test_lvbench_options_must_be_lettered_lines(tmp_path: Path) -> None:
    video = {"key": "v", "qa": [lvbench_question(1, "B", ["reasoning"])
                                | {"question": "What?\n(A) x\n(C) y"}]}  # fmt: skip
    path = tmp_path / "meta.jsonl"
    path.write_text(json.dumps(video) + "\n")
    with pytest.raises(EvalError, match=r"question 1: the question does not end with \(A\)"):
        benchmark("lvbench").load_samples(path)


def test_longvideobench_scores_per_duration_group_and_category(tmp_path: Path) -> None:
    ann, preds = lvb_files(tmp_path)
    bench = benchmark("longvideobench")
    samples = bench.load_samples(ann)
    assert samples[0].key == "vid0xyz_0" and samples[0].video_id == "vid0xyz"
    assert len(samples[0].options) == 5 and samples[0].answer == 4
    assert samples[0].target["subtitle_path"] == "vid0xyz_en.json"
    metrics = bench.score_files(ann, preds)
    assert metrics["Overall"] == 60.0  # 3 of 5
    assert metrics["duration_group"] == {"15": 100.0, "60": 100.0, "600": 50.0, "3600": 0.0}
    assert metrics["question_category"] == {"E2O": 0.0, "S2E": 100.0, "T3O": 50.0}
    assert metrics["unparsed"] == 1 and metrics["missing"] == 1


def test_longvideobench_parquet_layout_and_the_test_split(tmp_path: Path) -> None:
    bench = benchmark("longvideobench")
    record = lvb_record(0, 60, "S2E", 3, 2)
    del record["candidates"]
    layout = {f"option{i}": t for i, t in enumerate(["x", "y", "z", "N/A", "N/A"])}
    path = tmp_path / "validation.json"
    path.write_text(json.dumps([record | layout]))
    assert bench.load_samples(path)[0].options == ["x", "y", "z"]  # up to the first "N/A"
    test = tmp_path / "lvb_test_wo_gt.json"
    test.write_text(json.dumps([lvb_record(*r[:4], None) for r in LVB]))
    samples = bench.load_samples(test)
    assert not bench.has_ground_truth(samples)
    preds = tmp_path / "p.json"
    preds.write_text(json.dumps({"vid0xyz_0": "A"}))
    result = CliRunner().invoke(app, ["score", "longvideobench", "--annotations", str(test),
                                      "--predictions", str(preds)])  # fmt: skip
    assert isinstance(result.exception, EvalError) and "leaderboard" in str(result.exception)


def test_egoschema_full_reads_no_answers_and_is_scored_by_kaggle(tmp_path: Path) -> None:
    questions = egoschema_questions(tmp_path)
    full = benchmark("egoschema_full")
    samples = full.load_samples(questions)
    assert [s.answer for s in samples] == [None, None, None] and not full.has_ground_truth(samples)
    assert benchmark("egoschema").load_samples(questions)[0].answer == 2  # the subset still is
    sub = tmp_path / "submission.csv"
    sub.write_text("q_uid,answer\nuid-0,2\n")
    result = CliRunner().invoke(app, ["score", "egoschema_full", "--annotations", str(questions),
                                      "--predictions", str(sub)])  # fmt: skip
    assert isinstance(result.exception, EvalError) and "kaggle.com" in str(result.exception)


# --- one eval run per benchmark against a scripted server ------------------------------------


class _LastLetter(BaseHTTPRequestHandler):
    """An OpenAI-compatible server answering the last letter the prompt's "Answer with one
    letter (A, B, ...)" line offers; it keeps every chat request body."""

    bodies: list[dict[str, Any]]

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        models = {"object": "list", "data": [{"id": "tiny", "object": "model", "owned_by": "x"}]}
        self._send(200, json.dumps(models).encode())

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        self.bodies.append(body)
        prompt = body["messages"][-1]["content"]
        offered = re.findall(r"Answer with one letter \(([A-Z, ]+)\)", prompt)
        self._send(200, completion(offered[-1].split(", ")[-1] if offered else "A"))


@pytest.fixture
def last_letter_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    bodies: list[dict[str, Any]] = []
    handler = type("Handler", (_LastLetter,), {"bodies": bodies})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", bodies
    finally:
        server.shutdown()
        server.server_close()


def run_eval(name: str, ann: Path, root: Path, url: str) -> tuple[Path, dict[str, Any]]:
    samples = benchmark(name).load_samples(ann)
    captions = {s.video_id: [{"start": 0, "end": 5, "caption": "a person walks by"}]
                for s in samples}  # fmt: skip
    cap = root / "captions.json"
    cap.write_text(json.dumps(captions))
    out = root / f"run-{name}"
    args = ["run", name, "--annotations", str(ann), "--captions", str(cap), "--out", str(out),
            "--llm-url", url, "--no-cache", "--no-progress", "--max-retries", "0"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    return out, json.loads((out / "summary.json").read_text())


def prompts(bodies: list[dict[str, Any]]) -> list[str]:
    return [b["messages"][-1]["content"] for b in bodies]


def test_eval_run_videomme_writes_the_official_results_file(
    last_letter_server: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    url, bodies = last_letter_server
    ann, _ = videomme_files(tmp_path)
    out, summary = run_eval("videomme", ann, tmp_path, url)
    assert len(bodies) == 7 and all("A. Apples." in p and "A. A." not in p for p in prompts(bodies))
    results = json.loads((out / "videomme_results.json").read_text())
    assert [v["video_id"] for v in results] == ["001", "301", "601"]
    assert results[0]["duration_category"] == "short" and results[0]["videoID"] == "fFjv93ACGo8"
    questions = [q for v in results for q in v["questions"]]
    assert {q["response"] for q in questions} == {"D"}
    assert questions[0]["choices"][0] == "A. Apples." and questions[0]["answer"] == "A"
    # every answer D: right 001-3 and 601-1 only
    metrics = summary["metrics"]
    assert metrics["Overall"] == 28.57 and (metrics["short"], metrics["long"]) == (33.33, 50.0)
    assert (
        summary["valid_output_rate"] == 100.0 and summary["submission"] == "videomme_results.json"
    )
    assert benchmark("videomme").score_files(ann, out / "videomme_results.json") == metrics


def test_eval_run_mlvu_lvbench_and_longvideobench(
    last_letter_server: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    url, bodies = last_letter_server
    (tmp_path / "mlvu").mkdir()
    folder, _ = mlvu_files(tmp_path / "mlvu")
    out, summary = run_eval("mlvu", folder, tmp_path / "mlvu", url)
    rows = json.loads((out / "mlvu_predictions.json").read_text())
    assert rows[0] == {"question_id": "plotQA_0", "question_type": "plotQA", "option": "D"}
    assert len(rows) == 7
    # all D: plotQA_2 and anomaly_reco_0 (the last "Shooting") right -> (1/3 + 0 + 1/2) / 3
    assert summary["metrics"]["M-Avg"] == 27.78

    (tmp_path / "lvbench").mkdir()
    ann, _ = lvbench_files(tmp_path / "lvbench")
    out, summary = run_eval("lvbench", ann, tmp_path / "lvbench", url)
    answers = json.loads((out / "lvbench_answers.json").read_text())
    assert answers == {"1": "D", "2": "D", "3": "D", "4": "D"}
    assert summary["metrics"]["Overall"] == 25.0 and summary["metrics"]["Rea"] == 50.0
    shown = "Question: What is shown at mark 4?\nA. a cat\nB. a dog\nC. a bird\nD. a fish\n"
    assert sum(shown in p for p in prompts(bodies)) == 1  # the options split off the question

    (tmp_path / "lvb").mkdir()
    ann, _ = lvb_files(tmp_path / "lvb")
    before = len(bodies)
    out, summary = run_eval("longvideobench", ann, tmp_path / "lvb", url)
    sent = prompts(bodies[before:])
    assert sum("E. a book" in p for p in sent) == 1  # the one 5-option question
    submission = json.loads((out / "longvideobench_submission.json").read_text())
    assert submission["vid0xyz_0"] == "E" and submission["vid1xyz_0"] == "D"
    assert summary["metrics"]["Overall"] == 40.0  # vid0 (E) and vid3 (D) right


def test_eval_run_egoschema_full_writes_the_kaggle_csv_and_no_score(
    last_letter_server: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    url, _ = last_letter_server
    questions = egoschema_questions(tmp_path)
    out, summary = run_eval("egoschema_full", questions, tmp_path, url)
    assert (out / "submission.csv").read_text() == "q_uid,answer\nuid-0,4\nuid-1,4\nuid-2,4\n"
    assert summary["metrics"] is None and summary["submission"] == "submission.csv"
    assert "No ground truth to score against" in (out / "report.md").read_text()
