"""What the multiple-choice benchmarks share: NExT-QA-style CSVs, results files, the pooled
per-type accuracy, the answering step and the QA bank examples.

- CSV: columns ``video`` (IntentQA: ``video_id``), frame_count, width, height, question, answer
  (0-4), qid, type, a0..a4; a sample's key is ``{video}_{qid}``, as in the official results file
  ``{"<video>_<qid>": {"prediction": int, "answer": int}}``.
- Bank examples: input = the question and its lettered options (what the QA prompt shows, so what
  gets embedded), target = ``(C) answer text``; task ``qa``.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from vidagent.evals.benchmark import (
    DEFAULT_PARAMS,
    Benchmark,
    Params,
    Solution,
    SolveContext,
    succeeded,
)
from vidagent.evals.common import EvalError, Sample, SampleResult, load_json, ratio

if TYPE_CHECKING:
    from vidagent.core.records import Timeline
    from vidagent.retrieval.bank import Example

OPTION_LETTERS = "ABCDE"
ChoicePredictions = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class QAItem:
    """One multiple-choice question of a NExT-QA / IntentQA CSV."""

    video_id: str
    qid: str
    question: str
    options: tuple[str, ...]
    answer: int
    type: str
    extra: dict[str, int] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.video_id}_{self.qid}"


def qa_input_text(item: QAItem) -> str:
    """The question and lettered options, one per line."""
    question = item.question.strip()
    if not question.endswith("?"):
        question += "?"
    options = "\n".join(f"({OPTION_LETTERS[i]}) {o}" for i, o in enumerate(item.options))
    return f"{question}\n{options}"


def qa_target_text(item: QAItem) -> str:
    """``(C) strum the string``: the answer letter and text."""
    return f"({OPTION_LETTERS[item.answer]}) {item.options[item.answer]}"


def read_qa_csv(path: Path | str, video_column: str = "video") -> list[QAItem]:
    """Parse a NExT-QA-style CSV; a bad row (cut short, a blank option, a duplicate question, an
    answer out of range) is an error naming the file and line."""
    path = Path(path)
    required = [video_column, "question", "answer", "qid", "type", "a0", "a1", "a2", "a3", "a4"]
    rows: list[tuple[int, dict[str, Any]]] = []
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh, strict=True)
            fields = reader.fieldnames or []
            missing = [c for c in required if c not in fields]
            if missing:
                raise EvalError(
                    path, f"missing CSV column(s) {', '.join(missing)} (found {reader.fieldnames})"
                )
            try:
                rows.extend((reader.line_num, row) for row in reader)
            except csv.Error as exc:  # the DictReader's own line_num stops at the last good row
                line = reader.reader.line_num
                raise EvalError(
                    path, f"line {line}: not a readable CSV row ({exc}; cut short?)"
                ) from exc
    except FileNotFoundError as exc:
        raise EvalError(path, "no such file") from exc
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise EvalError(path, f"not a readable CSV ({exc})") from exc
    items: list[QAItem] = []
    first: dict[str, int] = {}
    for line, row in rows:
        item = _qa_item(path, line, row, len(fields), video_column)
        if item.key in first:
            raise EvalError(
                path, f"line {line}: question {item.key!r} again (first on line {first[item.key]})"
            )
        first[item.key] = line
        items.append(item)
    return items


def _qa_item(path: Path, line: int, row: dict[str, Any], width: int, video_column: str) -> QAItem:
    if None in row:
        raise EvalError(path, f"line {line}: more fields than the header's {width}")
    if None in row.values():
        given = sum(v is not None for v in row.values())
        raise EvalError(path, f"line {line}: {given} of {width} fields (the row is cut short)")
    for column in (video_column, "qid", "question"):
        if not str(row[column]).strip():
            raise EvalError(path, f"line {line}: {column} is blank")
    options = tuple(str(row[f"a{i}"]).strip() for i in range(5))
    blank = [f"a{i}" for i, option in enumerate(options) if not option]
    if blank:
        raise EvalError(path, f"line {line}: option {', '.join(blank)} is blank")
    try:
        answer = int(row["answer"])
    except (TypeError, ValueError) as exc:
        raise EvalError(path, f"line {line}: answer {row['answer']!r}") from exc
    if not 0 <= answer < len(options):
        raise EvalError(path, f"line {line}: answer {answer} is not in 0-4")
    extra = {c: int(row[c]) for c in ("frame_count", "width", "height") if _is_int(row.get(c))}
    return QAItem(
        video_id=str(row[video_column]).strip(),
        qid=str(row["qid"]).strip(),
        question=str(row["question"]),
        options=options,
        answer=answer,
        type=str(row["type"]).strip(),
        extra=extra,
    )


def option_index(value: object, count: int = len(OPTION_LETTERS)) -> int | None:
    """``value`` if it is an option index (an int in ``0..count-1``), else None."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < count:
        return value
    return None


def _is_int(value: object) -> bool:
    return isinstance(value, str) and value.strip().lstrip("-").isdigit()


def qa_examples(
    path: Path | str, *, video_column: str = "video", task: str = "qa"
) -> list[Example]:
    """Bank examples from a NExT-QA CSV (``video_column="video_id"`` for IntentQA)."""
    from vidagent.retrieval.bank import Example

    return [
        Example(
            task=task,
            input=qa_input_text(item),
            target=qa_target_text(item),
            video_id=item.video_id,
            key=item.key,
            metadata={"qid": item.qid, "type": item.type, "answer": item.answer, **item.extra},
        )
        for item in read_qa_csv(path, video_column)
    ]


def qa_samples(items: Sequence[QAItem]) -> list[Sample]:
    return [
        Sample(
            key=i.key,
            video_id=i.video_id,
            kind="qa",
            question=i.question,
            options=list(i.options),
            answer=i.answer,
            type=i.type,
        )
        for i in items
    ]


def read_choice_predictions(path: Path | str) -> ChoicePredictions:
    """An official results file: ``{key: {"prediction": int, "answer": int}}``."""
    data = load_json(path)
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise EvalError(path, 'expected {"<video>_<qid>": {"prediction": int, "answer": int}}')
    for key, value in data.items():
        if "prediction" not in value:
            raise EvalError(path, f"{key!r} has no 'prediction'")
        for field_name in ("prediction", "answer"):
            if field_name in value and option_index(value[field_name]) is None:
                raise EvalError(
                    path,
                    f"{key!r}: {field_name} {value[field_name]!r} is not an option index 0-4 "
                    "(the official results file has integers)",
                )
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


def solve_choice(sample: Sample, timeline: Timeline, context: SolveContext) -> Solution:
    """Answer the sample's question with ``answer_question``; the prediction is the option index."""
    from vidagent.tasks import answer_question

    res = answer_question(
        timeline, sample.question, sample.options, llm=context.llm, bank=context.bank,
        context=context.options,
    )  # fmt: skip
    return Solution(res.options.index(res.answer), True, res.run)


class ChoiceCSVBenchmark(Benchmark[ChoicePredictions]):
    """A NExT-QA-style benchmark: the CSV above, its results file, per-type pooled accuracy."""

    kind = "qa"
    submission_file = "predictions.json"
    bank_task = "qa"
    video_column: ClassVar[str] = "video"
    type_names: ClassVar[Mapping[str, str]]  # type code -> metric name
    group_names: ClassVar[Mapping[str, str]] = {}  # first letter of a type -> group metric name
    type_aliases: ClassVar[Mapping[str, str]] = {}

    def load_samples(self, path: Path | str, params: Params = DEFAULT_PARAMS) -> list[Sample]:
        return qa_samples(read_qa_csv(path, video_column=self.video_column))

    def read_predictions(self, path: Path | str) -> ChoicePredictions:
        return read_choice_predictions(path)

    def solve(self, sample: Sample, timeline: Timeline, context: SolveContext) -> Solution:
        return solve_choice(sample, timeline, context)

    def submission(
        self, samples: Sequence[Sample], results: Mapping[str, SampleResult]
    ) -> ChoicePredictions:
        ok = succeeded(samples, results)
        return {s.key: {"prediction": r.prediction, "answer": s.answer} for s, r in ok}

    def score(
        self,
        samples: Sequence[Sample],
        predictions: ChoicePredictions,
        params: Params = DEFAULT_PARAMS,
    ) -> dict[str, Any]:
        return score_qa(samples, predictions, self.type_names, self.group_names, self.type_aliases)

    def bank_examples(
        self, path: Path | str, *, task: str | None = None, params: Params = DEFAULT_PARAMS
    ) -> list[Example]:
        return qa_examples(path, video_column=self.video_column, task=task or "qa")
