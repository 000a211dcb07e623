"""Example-bank builders from the real annotation formats.

- Ego4D long-term action anticipation (``fho_lta_train.json``): ``{"clips": [...]}`` where each
  element is one annotated action of a clip (clip_uid, video_uid, action_idx, verb, noun,
  verb_label, noun_label, action_clip_start_sec, action_clip_end_sec, ...). Actions are grouped
  by clip and ordered by action_idx; every window of ``n_observed`` consecutive actions (N = 8)
  followed by ``n_future`` more (Z = 20) becomes one example: input = the observed actions,
  target = the future ones. Its key is ``{clip_uid}_{action_idx}`` of the last observed action,
  as in the benchmark. Clips with fewer than N + Z actions give no example.
- NExT-QA / IntentQA multiple-choice CSVs: columns video (IntentQA: video_id), frame_count,
  width, height, question, answer (0-4), qid, type, a0..a4. Key: ``{video}_{qid}`` as in the
  official results files.
- JSONL: one ``{"input", "target", "video_id", ...}`` object per line (see :func:`jsonl_examples`).

The input text is what the prompt will show for the example, so it is what gets embedded; the
text builders are parameters (``input_text`` / ``target_text``) so a task can match its prompt.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from agent.retrieval.bank import Example
from agent.retrieval.errors import AnnotationFormatError

SourceFormat = Literal["lta", "nextqa", "intentqa", "jsonl"]
SOURCE_FORMATS: tuple[str, ...] = ("lta", "nextqa", "intentqa", "jsonl")
DEFAULT_TASKS = {"lta": "lta", "nextqa": "qa", "intentqa": "qa"}
OPTION_LETTERS = "ABCDE"


# --- Ego4D LTA ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LTAAction:
    """One annotated action of an Ego4D LTA clip (the fields the builder uses)."""

    clip_uid: str
    video_uid: str
    action_idx: int
    verb: str
    noun: str
    verb_label: int
    noun_label: int
    start_sec: float
    end_sec: float


def clean_ego4d_label(name: str) -> str:
    """Readable Ego4D taxonomy name: ``take_(pick,_grab,_get)`` -> ``take``,
    ``tape_measure`` -> ``tape measure``. Synonym lists in parentheses are dropped."""
    return re.sub(r"_?\(.*\)$", "", name.strip()).replace("_", " ").strip()


def lta_actions_text(actions: Sequence[LTAAction]) -> str:
    """``take knife, cut onion, ...``: the action sequence as the anticipation prompt shows it."""
    return ", ".join(f"{clean_ego4d_label(a.verb)} {clean_ego4d_label(a.noun)}" for a in actions)


def _load_json(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError as exc:
        raise AnnotationFormatError(path, "no such file") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AnnotationFormatError(path, f"not valid JSON ({exc})") from exc


def _lta_action(path: Path, pos: int, item: Any) -> LTAAction:
    if not isinstance(item, dict):
        raise AnnotationFormatError(path, f"clips[{pos}] is not an object")
    try:
        return LTAAction(
            clip_uid=str(item["clip_uid"]),
            video_uid=str(item["video_uid"]),
            action_idx=int(item["action_idx"]),
            verb=str(item["verb"]),
            noun=str(item["noun"]),
            verb_label=int(item["verb_label"]),
            noun_label=int(item["noun_label"]),
            start_sec=float(item["action_clip_start_sec"]),
            end_sec=float(item["action_clip_end_sec"]),
        )
    except KeyError as exc:
        raise AnnotationFormatError(
            path, f"clips[{pos}] has no {exc.args[0]!r} (an unannotated test file?)"
        ) from exc
    except (TypeError, ValueError) as exc:
        raise AnnotationFormatError(path, f"clips[{pos}] has an invalid value ({exc})") from exc


def lta_examples(
    path: Path | str,
    *,
    n_observed: int = 8,
    n_future: int = 20,
    stride: int = 1,
    task: str = "lta",
    input_text: Callable[[Sequence[LTAAction]], str] = lta_actions_text,
    target_text: Callable[[Sequence[LTAAction]], str] = lta_actions_text,
) -> list[Example]:
    """Anticipation examples from an Ego4D ``fho_lta_{train,val}.json`` file (see module doc)."""
    path = Path(path)
    if n_observed < 1 or n_future < 1 or stride < 1:
        raise AnnotationFormatError(path, "n_observed, n_future and stride must be at least 1")
    data = _load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("clips"), list):
        raise AnnotationFormatError(
            path, "expected an Ego4D LTA file: an object with a 'clips' list"
        )
    by_clip: dict[str, list[LTAAction]] = {}
    for pos, item in enumerate(data["clips"]):
        action = _lta_action(path, pos, item)
        by_clip.setdefault(action.clip_uid, []).append(action)
    examples = []
    for clip_uid, actions in by_clip.items():
        actions.sort(key=lambda a: a.action_idx)
        last_window_end = len(actions) - n_future
        for end in range(n_observed, last_window_end + 1, stride):
            observed = actions[end - n_observed : end]
            future = actions[end : end + n_future]
            last = observed[-1]
            examples.append(
                Example(
                    task=task,
                    input=input_text(observed),
                    target=target_text(future),
                    video_id=last.video_uid,
                    clip_id=clip_uid,
                    key=f"{clip_uid}_{last.action_idx}",
                    metadata={
                        "last_action_idx": last.action_idx,
                        "observed_end_sec": last.end_sec,
                        "observed_verb_labels": [a.verb_label for a in observed],
                        "observed_noun_labels": [a.noun_label for a in observed],
                        "future_verb_labels": [a.verb_label for a in future],
                        "future_noun_labels": [a.noun_label for a in future],
                    },
                )
            )
    return examples


# --- NExT-QA / IntentQA ------------------------------------------------------------------------


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
    """Parse a NExT-QA-style CSV; errors name the file, line and column."""
    path = Path(path)
    required = [video_column, "question", "answer", "qid", "type", "a0", "a1", "a2", "a3", "a4"]
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise AnnotationFormatError(
                    path, f"missing CSV column(s) {', '.join(missing)} (found {reader.fieldnames})"
                )
            rows = list(reader)
    except FileNotFoundError as exc:
        raise AnnotationFormatError(path, "no such file") from exc
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise AnnotationFormatError(path, f"not a readable CSV ({exc})") from exc
    items = []
    for line, row in enumerate(rows, start=2):
        options = tuple((row[f"a{i}"] or "").strip() for i in range(5))
        try:
            answer = int(row["answer"])
        except (TypeError, ValueError) as exc:
            raise AnnotationFormatError(path, f"line {line}: answer {row['answer']!r}") from exc
        if not 0 <= answer < len(options):
            raise AnnotationFormatError(path, f"line {line}: answer {answer} is not in 0-4")
        extra = {c: int(row[c]) for c in ("frame_count", "width", "height") if _is_int(row.get(c))}
        items.append(
            QAItem(
                video_id=str(row[video_column]).strip(),
                qid=str(row["qid"]).strip(),
                question=str(row["question"]),
                options=options,
                answer=answer,
                type=str(row["type"]).strip(),
                extra=extra,
            )
        )
    return items


def _is_int(value: object) -> bool:
    return isinstance(value, str) and value.strip().lstrip("-").isdigit()


def qa_examples(
    path: Path | str,
    *,
    video_column: str = "video",
    task: str = "qa",
    input_text: Callable[[QAItem], str] = qa_input_text,
    target_text: Callable[[QAItem], str] = qa_target_text,
) -> list[Example]:
    """QA examples from a NExT-QA CSV (``video_column="video_id"`` for IntentQA)."""
    return [
        Example(
            task=task,
            input=input_text(item),
            target=target_text(item),
            video_id=item.video_id,
            key=f"{item.video_id}_{item.qid}",
            metadata={"qid": item.qid, "type": item.type, "answer": item.answer, **item.extra},
        )
        for item in read_qa_csv(path, video_column)
    ]


# --- JSONL -------------------------------------------------------------------------------------

_JSONL_ALIASES = {"video": "video_id", "clip": "clip_id", "id": "key"}


def jsonl_examples(path: Path | str, *, task: str | None = None) -> list[Example]:
    """Examples from JSONL: ``input``, ``target`` and ``video_id`` (alias ``video``) are required;
    ``task`` (or the ``task`` argument), ``clip_id``, ``key`` (alias ``id``) and ``metadata`` are
    optional. Other keys are errors (put them under ``metadata``), so a misspelt ``video_id``
    cannot silently disable the leakage check."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise AnnotationFormatError(path, "no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationFormatError(path, f"not a readable text file ({exc})") from exc
    examples = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AnnotationFormatError(path, f"line {number}: not valid JSON ({exc})") from exc
        if not isinstance(raw, dict):
            raise AnnotationFormatError(path, f"line {number}: expected a JSON object")
        record = {_JSONL_ALIASES.get(k, k): v for k, v in raw.items()}
        if "task" not in record and task is not None:
            record["task"] = task
        for name in ("input", "target", "video_id", "task"):
            if name not in record:
                hint = " (or pass a task)" if name == "task" else ""
                raise AnnotationFormatError(path, f"line {number}: no {name!r}{hint}")
        for name in ("video_id", "clip_id", "key"):
            if isinstance(record.get(name), int):
                record[name] = str(record[name])
        try:
            examples.append(Example.model_validate(record))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise AnnotationFormatError(path, f"line {number}: {where}: {first['msg']}") from exc
    return examples


def load_examples(
    path: Path | str,
    source_format: SourceFormat,
    *,
    task: str | None = None,
    n_observed: int = 8,
    n_future: int = 20,
) -> list[Example]:
    """Examples from ``path`` in ``source_format``; ``task`` overrides the format's default."""
    if source_format == "lta":
        return lta_examples(
            path, n_observed=n_observed, n_future=n_future, task=task or DEFAULT_TASKS["lta"]
        )
    if source_format in ("nextqa", "intentqa"):
        column = "video" if source_format == "nextqa" else "video_id"
        return qa_examples(path, video_column=column, task=task or DEFAULT_TASKS[source_format])
    if source_format == "jsonl":
        return jsonl_examples(path, task=task)
    raise AnnotationFormatError(
        path, f"unknown format {source_format!r}: choose one of {', '.join(SOURCE_FORMATS)}"
    )
