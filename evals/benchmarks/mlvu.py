"""MLVU multi-task long video understanding, multiple-choice dev set (Zhou et al., CVPR 2025;
github.com/JUNJIE99/MLVU).

- Source: the dev release's ``json/`` folder (``MLVU/MVLU`` on Hugging Face, also ``data/`` of
  the repo): one file per task, ``1_plotQA.json``, ``2_needle.json``, ``3_ego.json``,
  ``4_count.json``, ``5_order.json``, ``6_anomaly_reco.json``, ``7_topic_reasoning.json`` (the
  generation tasks 8-9 are skipped), each a list of ``{video, duration, question, candidates,
  answer (the option text), question_type}``. ``--annotations`` is that folder or one task file.
- Split: dev (2,175 multiple-choice questions; the test set is scored online). The task type is
  the file's, as the official ``choice_bench.py`` names it (``2_needle.json`` is ``needle``,
  although its records say ``findNeedle``); a file of another name falls back on
  ``question_type``. A question's key is ``<task>_<position in its file>`` (the release has no
  question ids); its video id is ``video`` without ``.mp4`` (videos sit in ``video/<task>/``:
  give ``--videos`` one folder holding them all).
- Answer format: one of the candidates (four in dev). The submission is a list of
  ``{"question_id", "question_type", "option"}`` rows with the option letter, the format of
  MLVU's online evaluation, which ``eval score`` reads too.
- Metric: the official ``evaluation/multiple_choice_evaluation/choice_bench.py`` (JUNJIE99/MLVU
  @fd060c1): the right letter is that of the *last* candidate equal to the answer text (its
  ``qa_template``); a predicted option is compared after ``check_ans`` (``"(B) text"`` -> ``B``:
  the character before the first ``)``); accuracy per task type, and M-Avg = the mean of the
  per-type accuracies (types present in the annotations, as upstream). Percent, two decimals.
- Caveats: two ``needle`` questions have an answer that is no candidate; upstream can never score
  them right, and neither do we (``no_answer`` counts them). Repeated and empty candidate texts
  are kept as they are (the answer keeps its letter). A question with no prediction counts as
  wrong (``missing``), as upstream, which scores every question. CC-BY-NC-SA-4.0 data, not
  redistributed here. No bank examples.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidagent.evals.benchmark import (
    DEFAULT_PARAMS,
    Benchmark,
    Params,
    Solution,
    SolveContext,
    succeeded,
)
from vidagent.evals.common import EvalError, Sample, SampleResult, load_json, pct
from vidagent.evals.long_video import (
    Tally,
    field_of,
    letter,
    read_records,
    solve_letter,
    text_field,
    unique_keys,
)

if TYPE_CHECKING:
    from vidagent.core.records import Timeline

MLVURows = list[dict[str, Any]]

TASK_FILES = {
    "plotQA": "1_plotQA.json",
    "needle": "2_needle.json",
    "ego": "3_ego.json",
    "count": "4_count.json",
    "order": "5_order.json",
    "anomaly_reco": "6_anomaly_reco.json",
    "topic_reasoning": "7_topic_reasoning.json",
}
TYPE_ALIASES = {"findNeedle": "needle"}


def check_ans(pred: str, gt_option: str) -> bool:
    """Upstream's ``check_ans``: with a ``)`` in ``pred``, the character before the first one."""
    if ")" in pred:
        index = pred.index(")")
        pred = pred[index - 1 : index]
    return pred == gt_option


def _task_of(path: Path, row: Mapping[str, Any], where: str) -> str:
    stem = re.sub(r"^\d+_", "", path.stem)
    if stem in TASK_FILES:
        return stem
    given = text_field(path, row, "question_type", where)
    task = TYPE_ALIASES.get(given, given)
    if task not in TASK_FILES:
        raise EvalError(path, f"{where}: unknown task {given!r} (MLVU dev has {list(TASK_FILES)})")
    return task


def _samples_of(path: Path) -> list[Sample]:
    samples = []
    for pos, row in enumerate(read_records(path)):
        where = f"record {pos}"
        task = _task_of(path, row, where)
        candidates = field_of(path, row, "candidates", where)
        if (
            not isinstance(candidates, list)
            or len(candidates) < 2
            or not all(isinstance(c, str) for c in candidates)
        ):
            raise EvalError(path, f"{where}: candidates {candidates!r} is not a list of texts")
        answer_text = field_of(path, row, "answer", where)
        matches = [i for i, c in enumerate(candidates) if c == answer_text]
        duration = row.get("duration")
        samples.append(
            Sample(
                key=f"{task}_{pos}",
                video_id=Path(text_field(path, row, "video", where)).stem,
                kind="qa",
                question=text_field(path, row, "question", where),
                options=list(candidates),
                answer=matches[-1] if matches else None,
                type=task,
                duration=float(duration) if isinstance(duration, int | float) else None,
                target={"answer_text": answer_text, "video": row["video"]},
            )
        )
    return samples


def read_rows(path: Path | str) -> MLVURows:
    """A submission: a list of ``{"question_id", "question_type", "option"}``."""
    data = load_json(path)
    if not isinstance(data, list):
        raise EvalError(path, 'expected a list of {"question_id", "question_type", "option"}')
    first: dict[str, int] = {}
    for pos, row in enumerate(data):
        if not isinstance(row, dict) or not {"question_id", "option"} <= set(row):
            raise EvalError(path, f"row {pos}: expected question_id and option (got {row!r})")
        if not isinstance(row["option"], str):
            raise EvalError(path, f"row {pos}: option {row['option']!r} is not a letter")
        qid = str(row["question_id"])
        if qid in first:
            raise EvalError(path, f"row {pos}: question {qid!r} again (first: row {first[qid]})")
        first[qid] = pos
    return data


class MLVU(Benchmark[MLVURows]):
    name = "mlvu"
    description = "MLVU dev multiple-choice: accuracy per task type and their mean (M-Avg)"
    kind = "qa"
    submission_file = "mlvu_predictions.json"

    def load_samples(self, path: Path | str, params: Params = DEFAULT_PARAMS) -> list[Sample]:
        path = Path(path)
        if path.is_dir():
            files = [path / name for name in TASK_FILES.values() if (path / name).is_file()]
            if not files:
                raise EvalError(path, f"none of MLVU's task files {list(TASK_FILES.values())}")
            return unique_keys(path, [s for f in files for s in _samples_of(f)])
        return unique_keys(path, _samples_of(path))

    def read_predictions(self, path: Path | str) -> MLVURows:
        return read_rows(path)

    def prediction_keys(self, predictions: MLVURows) -> set[str]:
        return {str(row["question_id"]) for row in predictions}

    def solve(self, sample: Sample, timeline: Timeline, context: SolveContext) -> Solution:
        return solve_letter(sample, timeline, context)

    def submission(
        self, samples: Sequence[Sample], results: Mapping[str, SampleResult]
    ) -> MLVURows:
        return [
            {"question_id": s.key, "question_type": s.type, "option": letter(r.prediction)}
            for s, r in succeeded(samples, results)
        ]

    def submission_text(self, predictions: MLVURows) -> str:
        """One JSON list (the online evaluation's format), not JSON Lines."""
        return json.dumps(predictions, indent=1) + "\n"

    def score(
        self, samples: Sequence[Sample], predictions: MLVURows, params: Params = DEFAULT_PARAMS
    ) -> dict[str, Any]:
        options = {str(row["question_id"]): str(row["option"]) for row in predictions}
        types = [t for t in TASK_FILES if any(s.type == t for s in samples)]
        tally = Tally.of(types)
        for sample in samples:
            pred = options.get(sample.key)
            right = "@" if sample.answer is None else letter(sample.answer)  # upstream's chr(64)
            tally.add(sample.type, pred is not None and check_ans(pred, right))
        per_type = tally.accuracy()
        fractions = [tally.right[t] / tally.total[t] for t in types]
        return {
            "M-Avg": pct(sum(fractions) / len(fractions)) if fractions else None,
            **per_type,
            "n": len(samples),
            "missing": sum(s.key not in options for s in samples),
            "no_answer": sum(s.answer is None for s in samples),
        }


BENCHMARK = MLVU()
