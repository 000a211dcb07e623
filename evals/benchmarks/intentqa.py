"""IntentQA multiple-choice intent QA (Li et al., ICCV 2023; github.com/JoseponLee/IntentQA).

- Source: the official ``{train,val,test}.csv``: NExT-QA's columns with ``video_id`` for
  ``video`` (video_id, frame_count, width, height, question, answer, qid, type, a0..a4).
- Split: ``test`` is the reported split; ``train`` gives the bank examples (task ``qa``).
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

from collections.abc import Sequence
from typing import Any

from vidagent.evals.benchmark import DEFAULT_PARAMS, Params
from vidagent.evals.common import Sample
from vidagent.evals.multiple_choice import ChoiceCSVBenchmark, ChoicePredictions

TYPE_NAMES = {"CW": "Why", "CH": "How", "TN": "Bef&Aft"}
TYPE_ALIASES = {"TP": "TN", "TP&TN": "TN"}


class IntentQA(ChoiceCSVBenchmark):
    name = "intentqa"
    description = "IntentQA multiple-choice intent QA: accuracy for Why, How, Bef&Aft and Total"
    video_column = "video_id"
    type_names = TYPE_NAMES
    type_aliases = TYPE_ALIASES

    def score(
        self,
        samples: Sequence[Sample],
        predictions: ChoicePredictions,
        params: Params = DEFAULT_PARAMS,
    ) -> dict[str, Any]:
        metrics = super().score(samples, predictions, params)
        metrics["Total"] = metrics.pop("Acc")
        return metrics


BENCHMARK = IntentQA()
