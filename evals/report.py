"""The end of a benchmark run: metrics, the official submission file, summary JSON, Markdown.

Failed samples stay in the denominator (a failure is a wrong answer, never a skipped one), so
accuracy is comparable with published numbers; the valid-output rate is reported next to it.
Everything benchmark-specific (the submission's name and format, the metric, the report's
tables) comes from the :class:`~vidagent.evals.benchmark.Benchmark`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vidagent.evals.benchmark import DEFAULT_PARAMS, Benchmark, MetricTable, Params
from vidagent.evals.common import Sample, SampleResult


def write_submission(bench: Benchmark[Any], predictions: Any, run_dir: Path) -> Path:
    """The benchmark's official submission file in ``run_dir``, and the other official files it
    names (:meth:`~vidagent.evals.benchmark.Benchmark.extra_files`), each replaced atomically."""
    path = run_dir / bench.submission_file
    _write_atomic(path, bench.submission_text(predictions))
    for name, text in bench.extra_files(predictions).items():
        _write_atomic(run_dir / name, text)
    return path


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def summarize(
    bench: Benchmark[Any],
    samples: Sequence[Sample],
    results: Mapping[str, SampleResult],
    *,
    wall_s: float,
    ran: int,
    run_dir: Path,
    params: Params = DEFAULT_PARAMS,
) -> dict[str, Any]:
    """Score, write the submission file, ``summary.json`` and ``report.md``; return the summary.

    Each sample counts once, with its latest result; ``params`` are the run's settings (Z...).
    """
    mine = [results[s.key] for s in samples if s.key in results]
    failures = [r for r in mine if not r.ok]
    predictions = bench.submission(samples, results)
    submission = write_submission(bench, predictions, run_dir)
    scorable = [s for s in samples if s.key in results]
    metrics: dict[str, Any] | None = None
    if scorable and bench.has_ground_truth(scorable):  # else: scored by the benchmark's server
        metrics = bench.score(scorable, predictions, params)
    valid = sum(r.ok and r.valid for r in mine)
    summary = {
        "task": bench.name,
        "samples": len(samples),
        "completed": len(mine),
        "succeeded": len(mine) - len(failures),
        "failed": len(failures),
        "transport_failed": sum(r.transport_failure for r in failures),
        "valid_output_rate": round(100.0 * valid / len(mine), 2) if mine else None,
        "metrics": metrics,
        "failures": [
            {"key": r.key, "error": r.error, "transport": r.transport_failure}
            for r in failures[:50]
        ],
        "usage": {
            "prompt_tokens": sum(r.prompt_tokens for r in mine),
            "completion_tokens": sum(r.completion_tokens for r in mine),
        },
        "wall_s": round(wall_s, 3),
        "ran_this_time": ran,
        "samples_per_s": round(ran / wall_s, 3) if wall_s > 0 else None,
        "submission": submission.name,
        "other_files": sorted(bench.extra_files(predictions)),
    }
    tables = bench.report(metrics) if metrics else []
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    (run_dir / "report.md").write_text(markdown(summary, tables), encoding="utf-8")
    return summary


def markdown(summary: Mapping[str, Any], tables: Sequence[MetricTable] = ()) -> str:
    """``report.md``: the run's counts, then the benchmark's metric tables."""
    lines = [f"# {summary['task']} run", "", "| | |", "| --- | --- |"]
    for key in ("samples", "completed", "succeeded", "failed", "transport_failed",
                "valid_output_rate"):  # fmt: skip
        lines.append(f"| {key} | {summary.get(key)} |")
    usage = summary["usage"]
    lines.append(f"| tokens (prompt / completion) | {usage['prompt_tokens']} / "
                 f"{usage['completion_tokens']} |")  # fmt: skip
    lines.append(f"| wall time (s) | {summary['wall_s']} |")
    lines.append(f"| samples/s (this invocation) | {summary['samples_per_s']} |")
    files = [summary["submission"], *summary.get("other_files", [])]
    lines.append(f"| submission file | {', '.join(f'`{f}`' for f in files)} |")
    lines += ["", "## Metrics"]
    for table in tables:
        if not table.rows:
            continue
        lines += ["", f"### {table.title}", ""] if table.title else [""]
        lines.append("| " + " | ".join(table.header) + " |")
        lines.append("|" + " --- |" * len(table.header))
        lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in table.rows]
    if not summary["metrics"]:
        lines += ["", "No ground truth to score against (submit the file above)."]
    if summary["failures"]:
        lines += ["", "## Failures", ""]
        lines += [f"- `{f['key']}`: {f['error']}" for f in summary["failures"]]
    return "\n".join(lines) + "\n"


def _cell(value: object) -> str:
    return "-" if value is None else str(value).replace("|", "\\|")
