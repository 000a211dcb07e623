"""The bank's own JSON Lines example format (:func:`vidagent.retrieval.jsonl_examples`); the
benchmarks' annotation formats are tested in test_eval_bank_examples.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vidagent.retrieval import AnnotationFormatError, jsonl_examples


def test_jsonl_records(tmp_path: Path) -> None:
    file = tmp_path / "examples.jsonl"
    lines = [
        {"input": "q1", "target": "a1", "video": "v1", "id": 5},
        {
            "input": "q2",
            "target": "a2",
            "video_id": "v2",
            "task": "grounding",
            "metadata": {"x": 1},
        },
    ]
    file.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    first, second = jsonl_examples(file, task="qa")
    assert (first.task, first.video_id, first.key) == ("qa", "v1", "5")
    assert (second.task, second.metadata) == ("grounding", {"x": 1})
    with pytest.raises(AnnotationFormatError, match="line 1: no 'task'"):
        jsonl_examples(file)
    file.write_text(json.dumps({"input": "q", "target": "a", "task": "qa"}))
    with pytest.raises(AnnotationFormatError, match="line 1: no 'video_id'"):
        jsonl_examples(file)
    file.write_text(
        json.dumps({"input": "q", "target": "a", "task": "t", "vid": "v", "video": "v"})
    )
    with pytest.raises(AnnotationFormatError, match="line 1: vid: Extra inputs"):
        jsonl_examples(file)
    file.write_text("not json\n")
    with pytest.raises(AnnotationFormatError, match="line 1: not valid JSON"):
        jsonl_examples(file)
