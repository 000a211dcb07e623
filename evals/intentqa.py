"""IntentQA multiple-choice intent QA (Li et al., ICCV 2023; github.com/JoseponLee/IntentQA).

- Source: the official ``{train,val,test}.csv``: NExT-QA's columns with ``video_id`` for
  ``video`` (video_id, frame_count, width, height, question, answer, qid, type, a0..a4).
- Split: ``test`` is the reported split.
- Answer format: one of five options; predictions are a NExT-QA style results file
  ``{"<video_id>_<qid>": {"prediction": int, "answer": int}}``.
- Metric: the breakdown IntentQA reports (its paper's table and its NExT-QA-derived eval):
  Why (CW), How (CH), Bef&Aft (TP and TN together; the CSV may also spell it ``TP&TN``) and Total,
  each pooled accuracy over questions, percent with two decimals.
- Caveats: the repo has no licence, so no real file ships with vidagent's tests. Missing
  predictions count as wrong (``missing``); the prediction file's ``answer`` is compared, as in
  NExT-QA's ``eval_mc.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agent.retrieval.builders import read_qa_csv
from evals.common import Sample
from evals.nextqa import qa_samples, read_predictions, score_qa

NAME = "intentqa"
TYPE_NAMES = {"CW": "Why", "CH": "How", "TN": "Bef&Aft"}
TYPE_ALIASES = {"TP": "TN", "TP&TN": "TN"}


def load_samples(path: Path | str) -> list[Sample]:
    return qa_samples(read_qa_csv(path, video_column="video_id"))


def score(samples: Sequence[Sample], predictions: Mapping[str, Mapping[str, Any]]) -> dict:
    metrics = score_qa(samples, predictions, TYPE_NAMES, {}, TYPE_ALIASES)
    metrics["Total"] = metrics.pop("Acc")
    return metrics


def score_files(annotations: Path, predictions: Path) -> dict[str, Any]:
    return score(load_samples(annotations), read_predictions(predictions))
