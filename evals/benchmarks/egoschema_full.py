"""EgoSchema full set, scored by the official Kaggle server (Mangalam et al., NeurIPS 2023;
github.com/egoschema/EgoSchema).

- Source: the same ``questions.json`` as :mod:`~vidagent.evals.benchmarks.egoschema` (5,031
  ``{"q_uid", "google_drive_id", "question", "option 0".."option 4"}``); ``subset_answers.json``
  is never read, so no public answer reaches a run of the full set.
- Split: the full set (its answers are not public). Videos are ``<q_uid>.mp4``.
- Answer format: one of five options; a run writes the Kaggle submission file ``submission.csv``
  (``q_uid,answer`` with answer 0-4; EgoSchema's README points to the Kaggle competition
  "egoschema-public").
- Metric: accuracy on the full set, computed by Kaggle only: ``has_ground_truth`` is false, so a
  run reports no local score and ``eval score egoschema_full`` says where to submit instead.
- Caveats: a second benchmark rather than a mode of ``egoschema`` because a run selects its
  benchmark by name and the harness passes no per-benchmark mode; ``egoschema`` keeps scoring
  the 500-question subset locally. A question whose sample failed is left out of the file (Kaggle
  counts it wrong); ``eval run --retry-failed`` fills it in. Ego4D licence: no data ships here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vidagent.evals.benchmark import DEFAULT_PARAMS, Params
from vidagent.evals.benchmarks.egoschema import Choices, EgoSchema, read_questions
from vidagent.evals.common import EvalError, Sample

KAGGLE = "https://www.kaggle.com/competitions/egoschema-public"


class EgoSchemaFull(EgoSchema):
    name = "egoschema_full"
    description = "EgoSchema full set (5,031 questions): the Kaggle submission CSV, scored there"

    def load_samples(
        self, path: Path | str, params: Params = DEFAULT_PARAMS, answers: Path | str | None = None
    ) -> list[Sample]:
        """Every question of ``questions.json``, none with an answer."""
        if answers is not None:
            raise EvalError(answers, "the full set has no public answers (use egoschema)")
        return read_questions(Path(path), {})

    def has_ground_truth(self, samples: Sequence[Sample]) -> bool:
        return False

    def score(
        self, samples: Sequence[Sample], predictions: Choices, params: Params = DEFAULT_PARAMS
    ) -> dict[str, Any]:
        raise EvalError(
            "egoschema_full",
            f"no local answers for the full set: submit submission.csv to {KAGGLE} (the "
            "egoschema benchmark scores the public 500-question subset here)",
        )


BENCHMARK = EgoSchemaFull()
