"""EgoSchema very-long-form video QA (Mangalam et al., NeurIPS 2023).

- Repository: github.com/egoschema/EgoSchema.

- Source: ``questions.json`` (a list of ``{"q_uid", "google_drive_id", "question",
  "option 0".."option 4"}``) and ``subset_answers.json`` (``{q_uid: int}``, 500 questions).
- Split: the full set (5,031 questions) is scored only by the official Kaggle server (the
  ``egoschema_full`` benchmark: no local score, the same submission file); the public subset
  answers allow local scoring here. The video id is the ``q_uid`` (videos are ``<q_uid>.mp4``).
- Answer format: one of five options; the submission is a CSV ``q_uid,answer`` (answer 0-4),
  which is also what ``eval score`` reads.
- Metric: accuracy over the subset questions, percent with two decimals (``subset_accuracy``);
  ``answered`` counts submission rows for all questions.
- Caveats: data under the Ego4D licence, not redistributable: tests build files in this format.
  Subset questions without a submitted answer count as wrong (``missing``). No bank examples
  (the answers of the subset are its test set).
"""

from __future__ import annotations

import csv
import io
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
from vidagent.evals.common import EvalError, Sample, SampleResult, load_json, ratio
from vidagent.evals.multiple_choice import option_index, solve_choice

if TYPE_CHECKING:
    from vidagent.core.records import Timeline

Choices = dict[str, int]


def read_answers(path: Path) -> dict[str, int]:
    data = load_json(path)
    if not isinstance(data, dict):
        raise EvalError(path, "expected {q_uid: answer}")
    for key, value in data.items():
        if option_index(value) is None:
            raise EvalError(path, f"{key!r}: answer {value!r} is not an option index 0-4")
    return {str(k): int(v) for k, v in data.items()}


def read_questions(path: Path, truth: Mapping[str, int]) -> list[Sample]:
    """The questions of ``questions.json``, those in ``truth`` with their answer (type
    ``subset``)."""
    data = load_json(path)
    if not isinstance(data, list):
        raise EvalError(path, "expected a list of questions")
    samples = []
    first: dict[str, int] = {}
    for pos, item in enumerate(data):
        try:
            uid = str(item["q_uid"])
            options = [str(item[f"option {i}"]) for i in range(5)]
            question = str(item["question"])
        except (KeyError, TypeError) as exc:
            raise EvalError(path, f"question {pos} lacks {exc}") from exc
        blank = [f"option {i}" for i, option in enumerate(options) if not option.strip()]
        if blank:
            raise EvalError(path, f"question {pos} ({uid}): {', '.join(blank)} is blank")
        if uid in first:
            raise EvalError(
                path, f"question {pos}: q_uid {uid!r} again (first: question {first[uid]})"
            )
        first[uid] = pos
        samples.append(
            Sample(
                key=uid,
                video_id=uid,
                kind="qa",
                question=question,
                options=options,
                answer=truth.get(uid),
                type="subset" if uid in truth else "",
            )
        )
    return samples


def submission_csv(choices: Mapping[str, int]) -> str:
    """The Kaggle submission file text."""
    lines = ["q_uid,answer", *(f"{k},{v}" for k, v in choices.items())]
    return "\n".join(lines) + "\n"


class EgoSchema(Benchmark[Choices]):
    name = "egoschema"
    description = "EgoSchema long-form video QA: accuracy on the public 500-question subset"
    kind = "qa"
    submission_file = "submission.csv"

    def load_samples(
        self, path: Path | str, params: Params = DEFAULT_PARAMS, answers: Path | str | None = None
    ) -> list[Sample]:
        """Questions of ``questions.json``; with ``answers`` (default: ``subset_answers.json``
        next to it, if present) the subset questions carry their answer."""
        path = Path(path)
        answers_path = Path(answers) if answers else path.with_name("subset_answers.json")
        truth = read_answers(answers_path) if answers or answers_path.exists() else {}
        return read_questions(path, truth)

    def read_predictions(self, path: Path | str) -> Choices:
        """A submission CSV with header ``q_uid,answer``."""
        path = Path(path)
        try:
            reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")), strict=True)
            rows = [(reader.line_num, row) for row in reader]
        except FileNotFoundError as exc:
            raise EvalError(path, "no such file") from exc
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise EvalError(path, f"not a readable CSV ({exc})") from exc
        if not {"q_uid", "answer"} <= set(reader.fieldnames or []):
            raise EvalError(path, f"expected the header q_uid,answer (found {reader.fieldnames})")
        out: dict[str, int] = {}
        first: dict[str, int] = {}
        for line, row in rows:
            uid, text = str(row["q_uid"] or "").strip(), str(row["answer"] or "").strip()
            answer = option_index(int(text)) if text.lstrip("-").isdigit() else None
            if not uid or answer is None:
                raise EvalError(
                    path, f"line {line}: expected q_uid,answer with answer 0-4 (got {text!r})"
                )
            if uid in first:
                raise EvalError(path, f"line {line}: q_uid {uid!r} again (first on line "
                                      f"{first[uid]})")  # fmt: skip
            first[uid] = line
            out[uid] = answer
        return out

    def solve(self, sample: Sample, timeline: Timeline, context: SolveContext) -> Solution:
        return solve_choice(sample, timeline, context)

    def submission(self, samples: Sequence[Sample], results: Mapping[str, SampleResult]) -> Choices:
        return {s.key: r.prediction for s, r in succeeded(samples, results)}

    def submission_text(self, predictions: Choices) -> str:
        return submission_csv(predictions)

    def score(
        self, samples: Sequence[Sample], predictions: Choices, params: Params = DEFAULT_PARAMS
    ) -> dict[str, Any]:
        subset = [s for s in samples if s.answer is not None]
        right = sum(int(predictions.get(s.key) == s.answer) for s in subset)
        return {
            "subset_accuracy": ratio(right, len(subset)),
            "n_subset": len(subset),
            "missing": sum(s.key not in predictions for s in subset),
            "answered": sum(s.key in predictions for s in samples),
            "n": len(samples),
        }


BENCHMARK = EgoSchema()
