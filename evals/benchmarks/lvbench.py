"""LVBench extreme long video QA (Wang et al., 2024; github.com/THUDM/LVBench).

- Source: ``video_info.meta.jsonl`` of the Hugging Face release ``THUDM/LVBench`` (103 videos,
  1,549 questions): one line per video ``{"key": <YouTube id>, "type", "video_info", "qa": [{"uid",
  "question", "answer", "question_type": [...], "time_reference"}]}``; a question's text ends
  with its options, one per line, ``(A) ...`` to ``(D) ...``.
- Split: the one released set (scored locally; the leaderboard takes the same numbers). Videos
  are ``<key>.mp4`` (what ``scripts/download.sh`` fetches by that id), so a sample's video id is
  ``key``; its key is ``str(uid)``, as the official answer file keys it.
- Answer format: one of the options, split off the question text (the options' ``(A)`` lines);
  the submission is the official answer file ``{uid: "A"}`` that ``compute_accuracy`` reads, and
  that ``eval score`` reads too.
- Metric: ``lvbench/metrics/compute_accuracy.py`` (THUDM/LVBench @f998d95): exact match of the
  answer file's string with the annotation's letter; accuracy per question type (a question with
  several types counts in each) and pooled ``Overall``; types named as ``scripts/test_acc.py``
  names them for the leaderboard (ER, EU, KIR, TG, Rea, Sum). Percent with two decimals
  (upstream gives fractions).
- Caveats: upstream leaves a question with no answer out of every denominator; here it counts as
  wrong (``missing``), so a complete answer file scores the same and a partial one is not
  inflated. CC-BY-NC-SA-4.0 data, not redistributed; tests build files in this schema. No bank
  examples.
"""

from __future__ import annotations

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
from vidagent.evals.common import EvalError, Sample, SampleResult
from vidagent.evals.long_video import (
    Tally,
    field_of,
    letter,
    letter_index,
    read_letter_map,
    read_records,
    solve_letter,
    text_field,
    unique_keys,
)

if TYPE_CHECKING:
    from vidagent.core.records import Timeline

Answers = dict[str, str]

SHORT_NAMES = {
    "entity recognition": "ER",
    "event understanding": "EU",
    "key information retrieval": "KIR",
    "temporal grounding": "TG",
    "reasoning": "Rea",
    "summarization": "Sum",
}
OPTION_LINE = re.compile(r"^\(([A-Z])\)\s?(.*)$")


def split_options(text: str) -> tuple[str, list[str]] | None:
    """``(question, options)`` of a question whose last lines are ``(A) ...``, ``(B) ...``; None
    when it has no such lines or they are not A, B, C... in order."""
    lines = text.split("\n")
    start = next((i for i, line in enumerate(lines) if OPTION_LINE.match(line.strip())), None)
    if start is None or start == 0:
        return None
    options = []
    for i, line in enumerate(lines[start:]):
        found = OPTION_LINE.match(line.strip())
        if found is None or found[1] != letter(i):
            return None
        options.append(found[2].strip())
    return "\n".join(lines[:start]).strip(), options


def _samples_of(path: Path, pos: int, row: Mapping[str, Any]) -> list[Sample]:
    video = text_field(path, row, "key", f"line {pos + 1}")
    qas = field_of(path, row, "qa", f"video {video!r}")
    if not isinstance(qas, list):
        raise EvalError(path, f"video {video!r}: qa {str(qas)[:40]!r} is not a list")
    samples = []
    for qa in qas:
        if not isinstance(qa, dict):
            raise EvalError(path, f"video {video!r}: a qa entry is not an object")
        uid = text_field(path, qa, "uid", f"video {video!r}")
        where = f"video {video!r}, question {uid}"
        split = split_options(str(field_of(path, qa, "question", where)))
        if split is None:
            raise EvalError(path, f"{where}: the question does not end with (A)... option lines")
        question, options = split
        answer = letter_index(field_of(path, qa, "answer", where), len(options))
        if answer is None:
            raise EvalError(path, f"{where}: answer {qa['answer']!r} is not one of the option "
                                  f"letters A-{letter(len(options) - 1)}")  # fmt: skip
        types = field_of(path, qa, "question_type", where)
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise EvalError(path, f"{where}: question_type {types!r} is not a list of names")
        samples.append(
            Sample(
                key=uid,
                video_id=video,
                kind="qa",
                question=question,
                options=options,
                answer=answer,
                type=", ".join(types),
                target={
                    "question_type": types,
                    "answer": qa["answer"],
                    "time_reference": qa.get("time_reference"),
                },
            )
        )
    return samples


def read_answers(path: Path | str) -> Answers:
    """The official answer file ``{uid: answer letter}``."""
    return read_letter_map(path, "answer")


class LVBench(Benchmark[Answers]):
    name = "lvbench"
    description = "LVBench hour-long video QA: accuracy overall and per question type"
    kind = "qa"
    submission_file = "lvbench_answers.json"

    def load_samples(self, path: Path | str, params: Params = DEFAULT_PARAMS) -> list[Sample]:
        path = Path(path)
        rows = read_records(path)
        return unique_keys(
            path, [s for pos, r in enumerate(rows) for s in _samples_of(path, pos, r)]
        )

    def read_predictions(self, path: Path | str) -> Answers:
        return read_answers(path)

    def solve(self, sample: Sample, timeline: Timeline, context: SolveContext) -> Solution:
        return solve_letter(sample, timeline, context)

    def submission(self, samples: Sequence[Sample], results: Mapping[str, SampleResult]) -> Answers:
        return {s.key: letter(r.prediction) for s, r in succeeded(samples, results)}

    def score(
        self, samples: Sequence[Sample], predictions: Answers, params: Params = DEFAULT_PARAMS
    ) -> dict[str, Any]:
        overall = Tally()
        by_type = Tally.of(SHORT_NAMES.values())
        for sample in samples:
            correct = predictions.get(sample.key) == sample.target["answer"]
            overall.add("all", correct)
            for category in sample.target["question_type"]:
                by_type.add(SHORT_NAMES.get(category, category), correct)
        return {
            "Overall": overall.pooled(),
            **by_type.accuracy(),
            "n": len(samples),
            "missing": sum(s.key not in predictions for s in samples),
        }


BENCHMARK = LVBench()
