"""Action labels for training: the files they come in, the taxonomy they index, the segments they
cover.

Label files (the format is told by the suffix):

- ``.json``: an Ego4D LTA / recognition annotation file (``fho_lta_{train,val}.json``:
  ``{"clips": [...]}``, one entry per action with ``clip_uid``, ``action_clip_start_sec``,
  ``action_clip_end_sec``, ``verb_label``, ``noun_label``; ``verb``/``noun`` names, when present,
  must agree with the taxonomy). The labels are indices into the taxonomy file, which is needed
  (``fho_lta_taxonomy.json``). A clip's video is ``<clip_uid>.<ext>`` (Ego4D's ``clips/`` folder).
- ``.csv`` (header ``video,start,end,verb,noun``) or ``.jsonl`` (one object with those keys per
  line): ``video`` is a file name or path (relative to the videos folder; the suffix may be left
  out), ``start``/``end`` seconds, ``verb``/``noun`` class names: a taxonomy entry as written
  (``take_(pick,_grab,_get)``) or its label (``take``), case-insensitive. Without a taxonomy file
  the classes are the sorted names found in the label files.

Which segments a label covers (:func:`segment_labels`): an action labels every segment it covers
for at least ``min_cover`` (default half) of the segment's length; an action that covers no segment
that much (shorter than half a segment, or straddling a boundary) labels the one segment it
overlaps most. A segment that two different actions label is a sample of each.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from vidagent.core.records import Segment
from vidagent.tools.taxonomy import Taxonomy
from vidagent.train.errors import LabelError

PLAIN_COLUMNS = ("video", "start", "end", "verb", "noun")
_EGO4D_FIELDS = (
    "clip_uid", "action_clip_start_sec", "action_clip_end_sec", "verb_label", "noun_label",
)  # fmt: skip


class ActionSpan(BaseModel):
    """One labelled action: a time span of one video and its verb and noun class indices."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    video: str
    start: float
    end: float
    verb: int
    noun: int
    where: str


@dataclass(frozen=True)
class _Raw:
    video: str
    start: float
    end: float
    verb: str | int
    noun: str | int
    where: str
    verb_name: str | None = None
    noun_name: str | None = None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LabelError(f"label file {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelError(f"label file {path}: not readable ({exc})") from None


def _seconds(value: Any, where: str, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise LabelError(f"{where}: {name} {value!r} is not a number of seconds") from None


def _ego4d_rows(path: Path) -> list[_Raw]:
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise LabelError(f"label file {path}: not valid JSON ({exc})") from None
    clips = data.get("clips") if isinstance(data, dict) else None
    if not isinstance(clips, list):
        raise LabelError(f"label file {path}: expected Ego4D's {{'clips': [...]}}")
    rows = []
    for pos, item in enumerate(clips):
        where = f"{path} clips[{pos}]"
        if not isinstance(item, dict):
            raise LabelError(f"{where}: not an object")
        missing = [k for k in _EGO4D_FIELDS if k not in item]
        if missing:
            raise LabelError(f"{where}: no {missing[0]!r} (an unannotated file?)")
        labels = []
        for key in ("verb_label", "noun_label"):
            value = item[key]
            if isinstance(value, bool) or not isinstance(value, int):
                raise LabelError(f"{where}: {key} {value!r} is not a class index")
            labels.append(value)
        rows.append(
            _Raw(
                video=str(item["clip_uid"]),
                start=_seconds(item["action_clip_start_sec"], where, "action_clip_start_sec"),
                end=_seconds(item["action_clip_end_sec"], where, "action_clip_end_sec"),
                verb=labels[0],
                noun=labels[1],
                where=where,
                verb_name=str(item["verb"]) if "verb" in item else None,
                noun_name=str(item["noun"]) if "noun" in item else None,
            )
        )
    return rows


def _plain_row(item: Any, where: str) -> _Raw:
    if not isinstance(item, dict):
        raise LabelError(f"{where}: expected an object with {', '.join(PLAIN_COLUMNS)}")
    missing = [k for k in PLAIN_COLUMNS if item.get(k) in (None, "")]
    if missing:
        raise LabelError(f"{where}: no {missing[0]!r} (columns: {', '.join(PLAIN_COLUMNS)})")
    return _Raw(
        video=str(item["video"]).strip(),
        start=_seconds(item["start"], where, "start"),
        end=_seconds(item["end"], where, "end"),
        verb=str(item["verb"]).strip(),
        noun=str(item["noun"]).strip(),
        where=where,
    )


def _plain_rows(path: Path) -> list[_Raw]:
    text = _read_text(path)
    if path.suffix.lower() == ".jsonl":
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise LabelError(f"{path}:{number}: not valid JSON ({exc})") from None
            rows.append(_plain_row(item, f"{path}:{number}"))
        return rows
    reader = csv.DictReader(text.splitlines())
    return [_plain_row(row, f"{path}:{n}") for n, row in enumerate(reader, start=2)]


def read_rows(path: str | Path) -> list[_Raw]:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _ego4d_rows(path)
    if suffix in (".csv", ".jsonl"):
        return _plain_rows(path)
    raise LabelError(f"label file {path}: unknown format (use an Ego4D .json, .csv or .jsonl)")


def infer_taxonomy(paths: Iterable[str | Path]) -> Taxonomy:
    """The sorted verb and noun names of plain label files (no taxonomy file given)."""
    rows = [row for p in paths for row in read_rows(p)]
    if any(isinstance(r.verb, int) for r in rows):
        raise LabelError(
            "an Ego4D label file's labels are indices into its taxonomy: pass the taxonomy file "
            "(fho_lta_taxonomy.json)"
        )
    if not rows:
        raise LabelError("the label files hold no labels to infer a taxonomy from")
    verbs = tuple(sorted({str(r.verb) for r in rows}))
    nouns = tuple(sorted({str(r.noun) for r in rows}))
    return Taxonomy(verbs, nouns, "labels")


def _names(entries: Sequence[str], labels: Sequence[str]) -> dict[str, int]:
    names: dict[str, int] = {}
    for i, (entry, label) in enumerate(zip(entries, labels, strict=True)):
        names.setdefault(entry.lower(), i)
        names.setdefault(label.lower(), i)
    return names


def _index(value: str | int, names: dict[str, int], entries: Sequence[str]) -> int | None:
    if isinstance(value, int):
        return value if 0 <= value < len(entries) else None
    return names.get(value.strip().lower())


def load_labels(path: str | Path, taxonomy: Taxonomy) -> list[ActionSpan]:
    """The labelled spans of one file, as indices into ``taxonomy``; labels outside it, or a span
    that ends before it starts, are a :class:`LabelError` naming the first one (and the count)."""
    rows = read_rows(path)
    verbs = _names(taxonomy.verbs, [c.label for c in taxonomy.verb_classes])
    nouns = _names(taxonomy.nouns, [c.label for c in taxonomy.noun_classes])
    spans, bad = [], []
    for r in rows:
        if not (0 <= r.start < r.end):
            raise LabelError(f"{r.where}: span [{r.start}, {r.end}] is not start < end, start >= 0")
        v, n = _index(r.verb, verbs, taxonomy.verbs), _index(r.noun, nouns, taxonomy.nouns)
        if v is None or n is None:
            bad.append(f"{'verb' if v is None else 'noun'} {r.verb if v is None else r.noun!r} "
                       f"({r.where})")  # fmt: skip
            continue
        for kind, name, entries, idx in (
            ("verb", r.verb_name, taxonomy.verbs, v),
            ("noun", r.noun_name, taxonomy.nouns, n),
        ):
            if name is not None and name != entries[idx]:
                raise LabelError(
                    f"{r.where}: {kind}_label {idx} is {entries[idx]!r} in the taxonomy "
                    f"({taxonomy.source}) but the file says {name!r}: another taxonomy version?"
                )
        spans.append(
            ActionSpan(video=r.video, start=r.start, end=r.end, verb=v, noun=n, where=r.where)
        )
    if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise LabelError(
            f"labels outside the taxonomy ({taxonomy.source}: {len(taxonomy.verbs)} verbs, "
            f"{len(taxonomy.nouns)} nouns): {bad[0]}{more}"
        )
    return spans


def segment_labels(
    spans: Sequence[ActionSpan], segments: Sequence[Segment], *, min_cover: float = 0.5
) -> list[tuple[int, ActionSpan]]:
    """``(segment index, span)`` pairs by the rule in the module doc (segment order, then span
    order; each (segment, verb, noun) once)."""
    pairs: list[tuple[int, ActionSpan]] = []
    seen: set[tuple[int, int, int]] = set()

    def add(i: int, span: ActionSpan) -> None:
        if (i, span.verb, span.noun) not in seen:
            seen.add((i, span.verb, span.noun))
            pairs.append((i, span))

    for span in spans:
        overlaps = [
            (min(span.end, s.end) - max(span.start, s.start), i) for i, s in enumerate(segments)
        ]
        covered = [
            i
            for (o, i) in overlaps
            if o > 0 and o >= min_cover * (segments[i].end - segments[i].start) - 1e-9
        ]
        if covered:
            for i in covered:
                add(i, span)
            continue
        best = max(overlaps, key=lambda t: (t[0], -t[1]), default=(0.0, -1))
        if best[0] > 0:
            add(best[1], span)
    pairs.sort(key=lambda p: p[0])
    return pairs
