"""What the long-video multiple-choice benchmarks share (Video-MME, MLVU, LVBench,
LongVideoBench): reading a release's record file, option letters, the official answer-letter
extraction, pooled accuracy per group, and the answering step.

- Record files: a JSON list, JSON Lines, or (when pyarrow is installed; it is not a vidagent
  dependency) the Hugging Face parquet file itself, each row a dict with the release's fields.
- Predictions recorded by a run are option indexes (0 = ``A``); each benchmark turns them into its
  official submission format (letters, keyed as the release keys its questions).
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidagent.evals.benchmark import Solution, SolveContext
from vidagent.evals.common import EvalError, Sample, load_json, load_jsonl, ratio

if TYPE_CHECKING:
    from vidagent.core.records import Timeline

LETTERS = string.ascii_uppercase


def letter(index: int) -> str:
    """``0 -> "A"``; an index outside A-Z is an error (no benchmark here has that many)."""
    if not 0 <= index < len(LETTERS):
        raise EvalError(index, "is not an option index 0-25")
    return LETTERS[index]


def letter_index(value: object, count: int) -> int | None:
    """The index of the option letter ``value`` (``"C" -> 2``) among ``count`` options, or
    None when it is not one of them."""
    if isinstance(value, str) and len(value) == 1 and value in LETTERS[:count]:
        return LETTERS.index(value)
    return None


def read_records(path: Path | str) -> list[dict[str, Any]]:
    """The rows of a release file: ``.jsonl`` (JSON Lines), ``.parquet`` (needs pyarrow), else a
    JSON list. Every row must be a JSON object."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        rows: Any = _read_parquet(path)
    elif suffix == ".jsonl":
        rows = load_jsonl(path)
    else:
        rows = load_json(path)
    if not isinstance(rows, list):
        raise EvalError(path, f"expected a list of records, got a JSON {type(rows).__name__}")
    for pos, row in enumerate(rows):
        if not isinstance(row, dict):
            raise EvalError(path, f"record {pos} is not an object ({str(row)[:60]!r})")
    return rows


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise EvalError(
            path,
            "reading parquet needs pyarrow (pip install pyarrow), or give the JSON/JSONL export "
            "of the dataset",
        ) from exc
    if not path.is_file():
        raise EvalError(path, "no such file")
    try:
        rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
    except (OSError, ValueError) as exc:
        raise EvalError(path, f"not a readable parquet file ({exc})") from exc
    return rows


def field_of(path: Path | str, row: Mapping[str, Any], name: str, where: str) -> Any:
    """``row[name]``; a missing field is an error naming the record."""
    if name not in row:
        raise EvalError(path, f"{where} lacks the field {name!r} (has {sorted(row)})")
    return row[name]


def text_field(path: Path | str, row: Mapping[str, Any], name: str, where: str) -> str:
    """A required field that must be a non-blank string (an id or a question)."""
    value = field_of(path, row, name, where)
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        raise EvalError(path, f"{where}: {name} {value!r} is not a non-blank string")
    return str(value).strip()


def read_letter_map(path: Path | str, what: str) -> dict[str, str]:
    """A ``{"<id>": "<text>", ...}`` file (answer letters, or a model's raw ``what`` text); a
    non-string value is an error naming its id."""
    data = load_json(path)
    if not isinstance(data, dict):
        raise EvalError(path, 'expected {"<id>": "A", ...}')
    for key, value in data.items():
        if not isinstance(value, str):
            raise EvalError(path, f"{key!r}: {what} {value!r} is not a string")
    return {str(k): v for k, v in data.items()}


def unique_keys(path: Path | str, samples: Sequence[Sample]) -> list[Sample]:
    """``samples`` unchanged; a key seen twice is an error naming both positions."""
    first: dict[str, int] = {}
    for pos, sample in enumerate(samples):
        if sample.key in first:
            raise EvalError(
                path, f"record {pos}: question {sample.key!r} again (first: record "
                      f"{first[sample.key]})",
            )  # fmt: skip
        first[sample.key] = pos
    return list(samples)


def extract_letter(text: str, letters: str, prefixes: Sequence[str]) -> str:
    """The answer letter of a free-text response as Video-MME's ``extract_characters_regex`` and
    LongVideoBench's ``parse_multi_choice_response`` find it: drop each prefix (in order), then
    the first of ``letters`` anywhere in what is left (so ``"Answer: C"`` reads as ``A``, as
    upstream); ``""`` when there is none. (Upstream's "more than 10 words and no letter" rule
    gives the same result as "no letter", so it needs no code here.)"""
    s = text.strip()
    for prefix in prefixes:
        s = s.replace(prefix, "")
    found = re.search(f"[{re.escape(letters)}]", s)
    return found[0] if found else ""


@dataclass
class Tally:
    """Right and total answers per group, in first-seen order (or a fixed order given first)."""

    right: dict[str, int] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, names: Iterable[str]) -> Tally:
        names = list(names)
        return cls(dict.fromkeys(names, 0), dict.fromkeys(names, 0))

    def add(self, group: str, correct: bool) -> None:
        self.total[group] = self.total.get(group, 0) + 1
        self.right[group] = self.right.get(group, 0) + int(correct)

    def accuracy(self) -> dict[str, float | None]:
        """Percent with two decimals per group (None for a group with no answer)."""
        return {g: ratio(self.right.get(g, 0), n) for g, n in self.total.items()}

    def pooled(self) -> float | None:
        return ratio(sum(self.right.values()), sum(self.total.values()))


def solve_letter(sample: Sample, timeline: Timeline, context: SolveContext) -> Solution:
    """Answer with ``answer_question``; the prediction is the index of the chosen *letter*, so a
    release's repeated option texts (MLVU has some) keep the position the model chose."""
    from vidagent.tasks import answer_question

    res = answer_question(
        timeline, sample.question, sample.options, llm=context.llm, bank=context.bank,
        context=context.options,
    )  # fmt: skip
    if res.letter is None:  # a choice answer always has its letter
        raise EvalError(sample.key, "the answer has no option letter")
    return Solution(LETTERS.index(res.letter), True, res.run)
