"""``vidagent eval run`` end to end for Ego4D LTA, Charades-STA and QVHighlights against the real
vLLM test server (tiny Llama; small Z, short taxonomy names and timelines for speed), on small
files in each benchmark's official format: the submission file has the official shape, the
summary has the official metrics, a resumed run sends nothing, and ``eval score`` on the run's own
submission gives back the run's metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from llm_support import tiny_model_dir, vllm_url
from typer.testing import CliRunner

from vidagent.cli.eval import app
from vidagent.core.records import ActionLabel, Caption, Segment, Segmentation, Timeline, VideoInfo
from vidagent.evals.runner import RESULTS

__all__ = ["tiny_model_dir", "vllm_url"]

VERBS = ["take", "cut", "wash", "open"]
NOUNS = ["cup", "knife", "onion", "door"]
N_ACTIONS = 11  # 8 observed + Z=2 future -> windows ending at actions 7 and 8


def lines(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (run_dir / RESULTS).read_text().splitlines()]


def invoke(args: list[str]) -> Any:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def lta_files(root: Path) -> tuple[Path, Path, Path]:
    """fho_lta_val.json (one clip of 11 actions), fho_lta_taxonomy.json, a timeline folder."""
    clips = []
    for i in range(N_ACTIONS):
        v, n = i % len(VERBS), (i * 3) % len(NOUNS)
        clips.append({
            "clip_uid": "clipA", "video_uid": "videoA", "clip_parent_start_sec": 0.0,
            "clip_parent_end_sec": float(N_ACTIONS), "action_idx": i, "verb": VERBS[v],
            "noun": NOUNS[n], "verb_label": v, "noun_label": n,
            "action_clip_start_sec": float(i), "action_clip_end_sec": i + 1.0,
            "action_clip_start_frame": 30 * i, "action_clip_end_frame": 30 * (i + 1),
        })  # fmt: skip
    ann = root / "fho_lta_val.json"
    ann.write_text(json.dumps({"version": "v2", "split": "val", "clips": clips}))
    tax = root / "fho_lta_taxonomy.json"
    tax.write_text(json.dumps({"verbs": VERBS, "nouns": NOUNS}))
    timelines = root / "timelines"
    timelines.mkdir()
    segments = [
        Segment(
            index=i, start=float(i), end=i + 1.0, start_frame=30 * i, end_frame=30 * (i + 1),
            captions=[Caption(text=f"{c['verb']} the {c['noun']}", model="test")],
            actions=[ActionLabel(verb=str(c["verb"]), noun=str(c["noun"]), score=0.9)],
        )
        for i, c in enumerate(clips)
    ]  # fmt: skip
    info = VideoInfo(path="clipA.mp4", fps=30.0, num_frames=30 * N_ACTIONS, duration=N_ACTIONS,
                     width=1, height=1, codec="none", backend="pyav")  # fmt: skip
    timeline = Timeline(video=info, segmentation=Segmentation(method="fixed", params={}),
                        segments=segments)  # fmt: skip
    (timelines / "clipA.json").write_text(timeline.model_dump_json())
    return ann, tax, timelines


def test_lta_run_writes_k_by_z_outputs_and_resumes(vllm_url: str, tmp_path: Path) -> None:
    ann, tax, timelines = lta_files(tmp_path)
    out = tmp_path / "lta-run"
    args = ["run", "ego4d_lta", "--annotations", str(ann), "--timelines", str(timelines),
            "--taxonomy", str(tax), "--out", str(out), "--llm-url", vllm_url, "--z", "2",
            "--candidates", "3", "--no-cache", "--no-progress",
            "--max-concurrency", "2"]  # fmt: skip
    invoke(args)
    outputs = json.loads((out / "outputs.json").read_text())
    assert sorted(outputs) == ["clipA_7", "clipA_8"]
    for pred in outputs.values():
        for name, size in (("verb", len(VERBS)), ("noun", len(NOUNS))):
            assert len(pred[name]) == 3 and all(len(c) == 2 for c in pred[name])
            assert all(isinstance(i, int) and 0 <= i < size for c in pred[name] for i in c)
    summary = json.loads((out / "summary.json").read_text())
    metrics = summary["metrics"]
    assert {"ED_verb", "ED_noun", "ED_action"} <= set(metrics)
    assert metrics["Z"] == 2 and metrics["n"] == 2 and metrics["missing"] == 0
    assert all(0.0 <= metrics[f"ED_{x}"] <= 1.0 for x in ("verb", "noun", "action"))
    assert summary["valid_output_rate"] is not None and summary["failed"] == 0
    assert summary["ran_this_time"] == 2
    rescored = invoke(["score", "ego4d_lta", "--annotations", str(ann), "--predictions",
                       str(out / "outputs.json"), "--z", "2"])  # fmt: skip
    assert json.loads(rescored.stdout) == metrics  # the run's own file scores the same
    first = lines(out)
    invoke(args)  # resumed: nothing to run, nothing appended
    assert lines(out) == first
    assert json.loads((out / "summary.json").read_text())["ran_this_time"] == 0
    assert json.loads((out / "outputs.json").read_text()) == outputs


CHARADES = [
    ("VID1", 0.0, 3.0, "a person opens a door"),
    ("VID1", 4.0, 8.0, "a person takes a cup"),
    ("VID2", 2.0, 6.0, "a person washes a plate"),
]
CAPTIONS = [
    {"start": 0, "end": 3, "caption": "a person opens a door"},
    {"start": 3, "end": 6, "caption": "a person walks in"},
    {"start": 6, "end": 10, "caption": "a person takes a cup"},
]


def charades_files(root: Path, with_vid2: bool = True) -> tuple[Path, Path]:
    ann = root / "charades_sta_test.txt"
    ann.write_text("".join(f"{v} {s:.1f} {e:.1f}##{q}\n" for v, s, e, q in CHARADES))
    cap = root / "captions.json"
    videos = ["VID1", "VID2"] if with_vid2 else ["VID1"]
    cap.write_text(json.dumps({v: CAPTIONS for v in videos}))
    return ann, cap


def check_windows(submission: Path, durations: dict[str, float]) -> list[dict[str, Any]]:
    rows = [json.loads(x) for x in submission.read_text().splitlines()]
    for row in rows:
        assert {"qid", "query", "vid", "pred_relevant_windows"} <= set(row)
        for st, ed, _score in row["pred_relevant_windows"]:
            assert 0.0 <= st < ed <= durations[row["vid"]] + 1e-6, row
    return rows


def test_charades_run_windows_and_score_round_trip(vllm_url: str, tmp_path: Path) -> None:
    ann, cap = charades_files(tmp_path)
    out = tmp_path / "cha-run"
    invoke(["run", "charades_sta", "--annotations", str(ann), "--captions", str(cap), "--out",
            str(out), "--llm-url", vllm_url, "--max-timeline-chars", "200", "--no-cache",
            "--no-progress"])  # fmt: skip
    rows = check_windows(out / "predictions.jsonl", {"VID1": 10.0, "VID2": 10.0})
    assert sorted(r["qid"] for r in rows) == ["0", "1", "2"]
    summary = json.loads((out / "summary.json").read_text())
    assert {"R1@0.3", "R1@0.5", "R1@0.7", "mIoU"} <= set(summary["metrics"])
    assert summary["metrics"]["n"] == 3 and summary["valid_output_rate"] == 100.0
    scored = invoke(["score", "charades_sta", "--annotations", str(ann), "--predictions",
                     str(out / "predictions.jsonl")])  # fmt: skip
    assert json.loads(scored.stdout) == summary["metrics"]


def test_qvhighlights_run_from_timelines_and_score_round_trip(
    vllm_url: str, tmp_path: Path
) -> None:
    ann = tmp_path / "highlight_val_release.jsonl"
    queries = [
        {"qid": 11, "query": "a person opens a door", "duration": 10, "vid": "vidQ_60.0_210.0",
         "relevant_windows": [[0, 4]], "relevant_clip_ids": [0, 1],
         "saliency_scores": [[4, 4, 4], [3, 3, 3]]},
        {"qid": 12, "query": "a person takes a cup", "duration": 10, "vid": "vidQ_60.0_210.0",
         "relevant_windows": [[6, 10]], "relevant_clip_ids": [3, 4],
         "saliency_scores": [[2, 2, 2], [1, 1, 1]]},
    ]  # fmt: skip
    ann.write_text("".join(json.dumps(q) + "\n" for q in queries))
    from vidagent.evals.sources import captions_timeline

    timelines = tmp_path / "timelines"
    timelines.mkdir()
    timeline = captions_timeline("vidQ_60.0_210.0", CAPTIONS)
    (timelines / "vidQ_60.0_210.0.json").write_text(timeline.model_dump_json())
    out = tmp_path / "qvh-run"
    invoke(["run", "qvhighlights", "--annotations", str(ann), "--timelines", str(timelines),
            "--out", str(out), "--llm-url", vllm_url, "--max-timeline-chars", "200",
            "--no-cache", "--no-progress"])  # fmt: skip
    rows = check_windows(out / "submission.jsonl", {"vidQ_60.0_210.0": 10.0})
    assert sorted(r["qid"] for r in rows) == ["11", "12"]
    summary = json.loads((out / "summary.json").read_text())
    metrics = summary["metrics"]
    assert {"R1@0.5", "R1@0.7", "mIoU", "brief"} <= set(metrics) and metrics["n"] == 2
    scored = invoke(["score", "qvhighlights", "--annotations", str(ann), "--predictions",
                     str(out / "submission.jsonl")])  # fmt: skip
    assert json.loads(scored.stdout) == metrics


@pytest.fixture
def failing_then_fixed(tmp_path: Path) -> tuple[Path, Path]:
    return charades_files(tmp_path, with_vid2=False)


def test_retry_failed_reruns_only_failed_samples_and_latest_record_wins(
    vllm_url: str, tmp_path: Path, failing_then_fixed: tuple[Path, Path]
) -> None:
    ann, cap = failing_then_fixed
    out = tmp_path / "retry-run"
    args = ["run", "charades_sta", "--annotations", str(ann), "--captions", str(cap), "--out",
            str(out), "--llm-url", vllm_url, "--max-timeline-chars", "200", "--no-cache",
            "--no-progress"]  # fmt: skip
    invoke(args)
    first = json.loads((out / "summary.json").read_text())
    assert first["failed"] == 1 and first["failures"][0]["key"] == "2"
    assert "no captions for video 'VID2'" in first["failures"][0]["error"]
    charades_files(tmp_path, with_vid2=True)  # the captions file is fixed
    invoke(args)  # without --retry-failed a failed sample counts as done
    assert len(lines(out)) == 3
    assert json.loads((out / "summary.json").read_text())["failed"] == 1
    invoke([*args, "--retry-failed"])
    records = lines(out)  # the retried sample's new record replaced its old one: no duplicate
    assert len(records) == 3 and sorted(r["key"] for r in records) == ["0", "1", "2"]
    assert records[-1]["key"] == "2" and records[-1]["ok"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["samples"] == summary["completed"] == summary["succeeded"] == 3
    assert summary["failed"] == 0 and summary["ran_this_time"] == 1
    assert summary["metrics"]["n"] == 3 and summary["metrics"]["missing"] == 0
    rows = check_windows(out / "predictions.jsonl", {"VID1": 10.0, "VID2": 10.0})
    assert sorted(r["qid"] for r in rows) == ["0", "1", "2"]
