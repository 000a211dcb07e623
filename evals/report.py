"""The end of a benchmark run: metrics, the official submission file, summary JSON, Markdown.

Failed samples stay in the denominator (a failure is a wrong answer, never a skipped one), so
accuracy is comparable with published numbers; the valid-output rate is reported next to it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evals.common import Sample
from evals.runner import SampleResult

SUBMISSION_FILES = {
    "nextqa": "predictions.json",
    "intentqa": "predictions.json",
    "egoschema": "submission.csv",
    "ego4d_lta": "outputs.json",
    "qvhighlights": "submission.jsonl",
    "charades_sta": "predictions.jsonl",
}


def predictions_for(
    task: str, samples: Sequence[Sample], results: Mapping[str, SampleResult]
) -> Any:
    """The successful predictions in the benchmark's official format (as ``score`` reads)."""
    ok = [(s, results[s.key]) for s in samples if s.key in results and results[s.key].ok]
    if task in ("nextqa", "intentqa"):
        return {s.key: {"prediction": r.prediction, "answer": s.answer} for s, r in ok}
    if task == "egoschema":
        return {s.key: r.prediction for s, r in ok}
    if task == "ego4d_lta":
        return {s.key: r.prediction for s, r in ok}
    failed = [s for s in samples if s.key in results and not results[s.key].ok]
    return [  # a failed query gets an empty window (IoU 0): it stays in the denominator
        {"qid": s.key, "query": s.question, "vid": s.video_id,
         "pred_relevant_windows": r.prediction}
        for s, r in ok
    ] + [
        {"qid": s.key, "query": s.question, "vid": s.video_id,
         "pred_relevant_windows": [[0.0, 0.0, 0.0]]}
        for s in failed
    ]  # fmt: skip


def write_submission(task: str, predictions: Any, run_dir: Path) -> Path:
    path = run_dir / SUBMISSION_FILES[task]
    if task == "egoschema":
        from evals.egoschema import submission_csv

        text = submission_csv(predictions)
    elif isinstance(predictions, list):
        text = "".join(json.dumps(p) + "\n" for p in predictions)
    else:
        text = json.dumps(predictions)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def summarize(
    task: str,
    samples: Sequence[Sample],
    results: Mapping[str, SampleResult],
    *,
    wall_s: float,
    ran: int,
    run_dir: Path,
    lta_z: int | None = None,
) -> dict[str, Any]:
    """Score, write the submission file, ``summary.json`` and ``report.md``; return the summary.

    Each sample counts once, with its latest result; ``lta_z`` is the Z of ED@Z (default 20).
    """
    from evals.registry import benchmark

    module = benchmark(task)
    mine = [results[s.key] for s in samples if s.key in results]
    failures = [r for r in mine if not r.ok]
    predictions = predictions_for(task, samples, results)
    submission = write_submission(task, predictions, run_dir)
    scorable = [s for s in samples if s.key in results]
    metrics: dict[str, Any] | None = None
    if task == "ego4d_lta" and not any(s.target for s in scorable):
        metrics = None  # unannotated: scored by the challenge server
    elif task == "ego4d_lta":
        metrics = module.score(scorable, predictions, z=lta_z or module.Z)
    elif scorable:
        metrics = module.score(scorable, predictions)
    valid = sum(r.ok and r.valid for r in mine)
    summary = {
        "task": task,
        "samples": len(samples),
        "completed": len(mine),
        "succeeded": len(mine) - len(failures),
        "failed": len(failures),
        "valid_output_rate": round(100.0 * valid / len(mine), 2) if mine else None,
        "metrics": metrics,
        "failures": [{"key": r.key, "error": r.error} for r in failures[:50]],
        "usage": {
            "prompt_tokens": sum(r.prompt_tokens for r in mine),
            "completion_tokens": sum(r.completion_tokens for r in mine),
        },
        "wall_s": round(wall_s, 3),
        "ran_this_time": ran,
        "samples_per_s": round(ran / wall_s, 3) if wall_s > 0 else None,
        "submission": submission.name,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    (run_dir / "report.md").write_text(markdown(summary), encoding="utf-8")
    return summary


def markdown(summary: Mapping[str, Any]) -> str:
    lines = [f"# {summary['task']} run", "", "| | |", "| --- | --- |"]
    for key in ("samples", "completed", "succeeded", "failed", "valid_output_rate"):
        lines.append(f"| {key} | {summary[key]} |")
    usage = summary["usage"]
    lines.append(f"| tokens (prompt / completion) | {usage['prompt_tokens']} / "
                 f"{usage['completion_tokens']} |")  # fmt: skip
    lines.append(f"| wall time (s) | {summary['wall_s']} |")
    lines.append(f"| samples/s (this invocation) | {summary['samples_per_s']} |")
    lines.append(f"| submission file | `{summary['submission']}` |")
    lines += ["", "## Metrics", ""]
    metrics = summary["metrics"] or {}
    flat = {k: v for k, v in metrics.items() if not isinstance(v, dict)}
    if flat:
        lines += ["| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {v} |" for k, v in flat.items()]
    for name, block in metrics.items():
        if isinstance(block, dict):
            lines += ["", f"### {name}", "", "```json", json.dumps(block, indent=2), "```"]
    if not metrics:
        lines.append("No ground truth to score against (submit the file above).")
    if summary["failures"]:
        lines += ["", "## Failures", ""]
        lines += [f"- `{f['key']}`: {f['error']}" for f in summary["failures"]]
    return "\n".join(lines) + "\n"
