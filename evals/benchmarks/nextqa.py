"""NExT-QA multiple-choice QA (Xiao et al., CVPR 2021; github.com/doc-doc/NExT-QA).

- Source: ``dataset/nextqa/{train,val,test}.csv`` of the official repo (val: 4,996 questions,
  570 videos). Columns: video, frame_count, width, height, question, answer (0-4), qid, type,
  a0..a4.
- Split: ``val`` is the usual reporting split (test answers are released too); ``train`` gives
  the bank examples (task ``qa``, see :mod:`vidagent.evals.multiple_choice`).
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

from collections.abc import Mapping
from typing import Any

from vidagent.evals.benchmark import MetricTable
from vidagent.evals.multiple_choice import ChoiceCSVBenchmark

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


class NextQA(ChoiceCSVBenchmark):
    name = "nextqa"
    description = "NExT-QA multiple-choice QA: accuracy per question type (official eval_mc.py)"
    video_column = "video"
    type_names = TYPE_NAMES
    group_names = GROUP_NAMES
    type_aliases = TYPE_ALIASES

    def report(self, metrics: Mapping[str, Any]) -> list[MetricTable]:
        headline = ["Acc", *GROUP_NAMES.values(), "n", "missing"]
        by_type = [(name, code, metrics.get(name)) for code, name in TYPE_NAMES.items()]
        return [
            MetricTable(rows=[(k, metrics.get(k)) for k in headline]),
            MetricTable(title="by question type", header=("type", "code", "Acc"), rows=by_type),
        ]


BENCHMARK = NextQA()
