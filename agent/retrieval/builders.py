"""Example records from JSON Lines, the example bank's own generic input format.

One ``{"input", "target", "video_id", ...}`` object per line (see :func:`jsonl_examples`). The
readers of benchmark annotation files (Ego4D LTA, NExT-QA, IntentQA...) belong to the benchmarks
(:meth:`vidagent.evals.benchmark.Benchmark.bank_examples`); ``vidagent index build`` gets their
examples from there and hands them to :class:`~vidagent.retrieval.bank.ExampleBank`.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from vidagent.retrieval.bank import Example
from vidagent.retrieval.errors import AnnotationFormatError

_JSONL_ALIASES = {"video": "video_id", "clip": "clip_id", "id": "key"}


def jsonl_examples(path: Path | str, *, task: str | None = None) -> list[Example]:
    """Examples from JSONL: ``input``, ``target`` and ``video_id`` (alias ``video``) are required;
    ``task`` (or the ``task`` argument), ``clip_id``, ``key`` (alias ``id``) and ``metadata`` are
    optional. Other keys are errors (put them under ``metadata``), so a misspelt ``video_id``
    cannot silently disable the leakage check."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise AnnotationFormatError(path, "no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationFormatError(path, f"not a readable text file ({exc})") from exc
    examples = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AnnotationFormatError(path, f"line {number}: not valid JSON ({exc})") from exc
        if not isinstance(raw, dict):
            raise AnnotationFormatError(path, f"line {number}: expected a JSON object")
        record = {_JSONL_ALIASES.get(k, k): v for k, v in raw.items()}
        if "task" not in record and task is not None:
            record["task"] = task
        for name in ("input", "target", "video_id", "task"):
            if name not in record:
                hint = " (or pass a task)" if name == "task" else ""
                raise AnnotationFormatError(path, f"line {number}: no {name!r}{hint}")
        for name in ("video_id", "clip_id", "key"):
            if isinstance(record.get(name), int):
                record[name] = str(record[name])
        try:
            examples.append(Example.model_validate(record))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise AnnotationFormatError(path, f"line {number}: {where}: {first['msg']}") from exc
    return examples
