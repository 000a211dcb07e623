"""NExT-QA multiple-choice QA (Xiao et al., CVPR 2021; github.com/doc-doc/NExT-QA).

- Source: ``dataset/nextqa/{val,test}.csv`` of the official repo (val: 4,996 questions, 570
  videos). Columns: video, frame_count, width, height, question, answer (0-4), qid, type, a0..a4.
- Split: ``val`` is the usual reporting split (test answers are released too).
- Answer format: one of five options; predictions are the official results file
  ``{"<video>_<qid>": {"prediction": int, "answer": int}}``.
- Metric: accuracy as the official ``eval_mc.py``: per type Why (CW), How (CH), Bef&Aft (TN, with
  TP counted as TN), When (TC), Cnt (DC), Loc (DL), Other (DO); groups Acc_C / Acc_T / Acc_D and
  overall Acc pooled over questions (not averaged over types); percent with two decimals.
- Caveats: like ``eval_mc.py`` the ``answer`` stored in the prediction file is the one compared
  (the CSV answer when the file has none). ``eval_mc.py`` crashes on a missing key; here a missing
  prediction counts as wrong and is reported under ``missing``. An empty type gives ``null``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agent.retrieval.builders import QAItem, read_qa_csv
from evals.common import EvalError, Sample, load_json, ratio

NAME = "nextqa"
TYPE_NAMES = {
    "CW": "Why",
    "CH": "How",
    "TN": "Bef&Aft",
    "TC": "When",
    "DC": "Cnt",
    "DL": "Loc",
    "DO": "Other",
}
GROUP_NAMES = {"C": "Acc_C", "T": "Acc_T", "D": "Acc_D"}
TYPE_ALIASES = {"TP": "TN"}


def qa_key(item: QAItem) -> str:
    return f"{item.video_id}_{item.qid}"


def qa_samples(items: Sequence[QAItem]) -> list[Sample]:
    return [
        Sample(
            key=qa_key(i),
            video_id=i.video_id,
            kind="qa",
            question=i.question,
            options=list(i.options),
            answer=i.answer,
            type=i.type,
        )
        for i in items
    ]


def load_samples(path: Path | str) -> list[Sample]:
    """The questions of a NExT-QA CSV, keyed as the official results file."""
    return qa_samples(read_qa_csv(path, video_column="video"))


def read_predictions(path: Path | str) -> dict[str, dict[str, Any]]:
    """An official results file: ``{key: {"prediction": int, "answer": int}}``."""
    data = load_json(path)
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise EvalError(path, 'expected {"<video>_<qid>": {"prediction": int, "answer": int}}')
    for key, value in data.items():
        if "prediction" not in value:
            raise EvalError(path, f"{key!r} has no 'prediction'")
    return data


def score_qa(
    samples: Sequence[Sample],
    predictions: Mapping[str, Mapping[str, Any]],
    type_names: Mapping[str, str],
    group_names: Mapping[str, str],
    aliases: Mapping[str, str],
) -> dict[str, Any]:
    """Pooled accuracy per type, per group (first letter of the type) and overall."""
    right: dict[str, int] = dict.fromkeys(type_names, 0)
    count: dict[str, int] = dict.fromkeys(type_names, 0)
    missing = 0
    for sample in samples:
        qtype = aliases.get(sample.type, sample.type)
        if qtype not in type_names:
            raise EvalError(sample.key, f"unknown question type {sample.type!r}")
        count[qtype] += 1
        pred = predictions.get(sample.key)
        if pred is None:
            missing += 1
            continue
        answer = pred.get("answer", sample.answer)
        right[qtype] += int(pred.get("prediction") == answer)
    metrics: dict[str, Any] = {name: ratio(right[t], count[t]) for t, name in type_names.items()}
    for group, name in group_names.items():
        members = [t for t in type_names if t.startswith(group)]
        metrics[name] = ratio(sum(right[t] for t in members), sum(count[t] for t in members))
    metrics["Acc"] = ratio(sum(right.values()), sum(count.values()))
    metrics["n"] = sum(count.values())
    metrics["missing"] = missing
    return metrics


def score(samples: Sequence[Sample], predictions: Mapping[str, Mapping[str, Any]]) -> dict:
    """The official ``eval_mc.py`` figures (see module doc)."""
    return score_qa(samples, predictions, TYPE_NAMES, GROUP_NAMES, TYPE_ALIASES)


def score_files(annotations: Path, predictions: Path) -> dict[str, Any]:
    return score(load_samples(annotations), read_predictions(predictions))


def prediction_file(samples: Sequence[Sample], choices: Mapping[str, int]) -> dict[str, Any]:
    """The official results file for the answered ``samples`` (``choices``: key -> option)."""
    return {
        s.key: {"prediction": choices[s.key], "answer": s.answer}
        for s in samples
        if s.key in choices
    }
