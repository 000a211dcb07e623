"""Verb/noun taxonomies for action recognition: class parsing, labels and the built-in default.

Taxonomy files use Ego4D LTA's format, ``{"verbs": [...], "nouns": [...]}`` (115/478 classes in v1,
117/521 in v2; other keys are ignored). Entries such as ``take_(pick,_grab,_get)`` are normalized by
:func:`parse_class`: the label is the head (``take``), the parenthesized words are synonyms that the
zero-shot prompt ensemble averages over. A single parenthesized word is a qualifier, not a synonym:
``bat_(sports)`` is prompted as ``bat (sports)``, and labelled so when the head alone is ambiguous
(``nut (food)`` vs ``nut (tool)``). Without a file, the small
built-in :data:`BASIC_TAXONOMY` is used.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidagent.core.errors import ConfigError
from vidagent.core.records import Record

_VOWELS = set("aeiou")
_BASIC_VERBS = (
    "take_(pick,_grab,_get) put_(place,_leave,_drop) hold_(support,_grip,_grasp) open close "
    "cut_(chop,_slice) wash_(clean,_rinse) wipe pour stir mix peel move carry push pull throw "
    "turn_on_(switch_on,_start) turn_off_(switch_off) read write type eat drink cook walk sit "
    "stand talk_(speak,_converse) look_(watch,_observe) use play fold hang"
)
_BASIC_NOUNS = (
    "person hand cup mug bowl plate knife fork spoon pan pot kettle bottle glass water food "
    "bread vegetable fruit onion tomato apple box bag paper book phone laptop computer "
    "keyboard screen television remote door drawer cabinet fridge oven sink tap table chair "
    "sofa bed floor wall window shelf towel cloth clothes shoe car bicycle ball tool "
    "hammer_(hammer,_mallet) screwdriver brush pen dough plant dog cat"
)
BASIC_TAXONOMY: dict[str, list[str]] = {
    "verbs": _BASIC_VERBS.split(),
    "nouns": _BASIC_NOUNS.split(),
}
"""A small everyday taxonomy (34 verbs, 64 nouns) used when no taxonomy file is given."""


class ActionClass(Record):
    """One taxonomy entry: its text in the file, a readable label, and the names to prompt with."""

    raw: str
    label: str
    names: list[str]


def _readable(text: str) -> str:
    return re.sub(
        r"\s+", " ", text.replace("_", " ").replace("/", " or ").replace("-", " ")
    ).strip()


def parse_class(raw: str) -> ActionClass:
    """``take_(pick,_grab,_get)`` -> label ``take``, names ``[take, pick, grab, get]``."""
    head, paren, rest = raw.partition("(")
    label = _readable(head)
    synonyms = [_readable(s) for s in rest.rstrip(")").split(",")] if paren else []
    synonyms = [s for s in synonyms if s]
    if not label:  # "(something)" alone
        label, synonyms = (synonyms[0], synonyms[1:]) if synonyms else (_readable(raw), [])
    if len(synonyms) == 1 and synonyms[0] != label:  # "bat_(sports)": a qualifier, not a synonym
        return ActionClass(raw=raw, label=label, names=[f"{label} ({synonyms[0]})"])
    names = list(dict.fromkeys([label, *synonyms]))
    return ActionClass(raw=raw, label=label, names=names)


def _classes(entries: Sequence[str]) -> list[ActionClass]:
    classes = [parse_class(e) for e in entries]
    counts: dict[str, int] = {}
    for c in classes:
        counts[c.label] = counts.get(c.label, 0) + 1
    out = []
    for c in classes:
        if counts[c.label] > 1 and c.names[0] != c.label:
            # "nut (food)" / "nut (tool)": the qualifier keeps the labels apart.
            c = c.model_copy(update={"label": c.names[0]})
        out.append(c)
    return out


BUILTIN_NAME = "demo"
"""``--taxonomy demo``: the built-in verbs and nouns (:data:`BASIC_TAXONOMY`), no file needed."""


@dataclass(frozen=True)
class Taxonomy:
    """Verb and noun classes in file order (the rows of the probability matrices)."""

    verbs: tuple[str, ...]
    nouns: tuple[str, ...]
    source: str = "builtin:basic"

    @classmethod
    def basic(cls) -> Taxonomy:
        return cls(tuple(BASIC_TAXONOMY["verbs"]), tuple(BASIC_TAXONOMY["nouns"]))

    @classmethod
    def from_dict(cls, data: Any, source: str) -> Taxonomy:
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: a taxonomy is a JSON object with 'verbs' and 'nouns'")
        lists = []
        for key in ("verbs", "nouns"):
            entries = data.get(key)
            if not isinstance(entries, list) or not entries:
                raise ConfigError(f"{source}: '{key}' must be a non-empty list of strings")
            bad = [e for e in entries if not isinstance(e, str) or not e.strip()]
            if bad:
                raise ConfigError(f"{source}: '{key}' has a non-string or empty entry {bad[0]!r}")
            lists.append(tuple(entries))
        return cls(lists[0], lists[1], source)

    @classmethod
    def load(cls, path: str | Path) -> Taxonomy:
        """Read an Ego4D-style taxonomy JSON file; the name ``demo`` (when no such file exists)
        is the built-in taxonomy the demo uses (:meth:`basic`)."""
        p = Path(path)
        if str(path) == BUILTIN_NAME and not p.exists():
            return cls.basic()
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"taxonomy file {p}: no such file") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"taxonomy file {p}: not readable JSON ({exc})") from None
        return cls.from_dict(data, str(p))

    @property
    def digest(self) -> str:
        doc = json.dumps({"verbs": self.verbs, "nouns": self.nouns}, separators=(",", ":"))
        return hashlib.sha256(doc.encode()).hexdigest()

    @property
    def verb_classes(self) -> list[ActionClass]:
        return _classes(self.verbs)

    @property
    def noun_classes(self) -> list[ActionClass]:
        return _classes(self.nouns)


def gerund(phrase: str) -> str:
    """``take`` -> ``taking``, ``cut`` -> ``cutting``, ``turn off`` -> ``turning off``."""
    first, _, rest = phrase.partition(" ")
    w = first.lower()
    if w.endswith("ie"):
        w = w[:-2] + "ying"
    elif w.endswith("e") and not w.endswith(("ee", "ye", "oe")) and len(w) > 2:
        w = w[:-1] + "ing"
    elif (
        len(w) >= 3
        and w[-1] not in _VOWELS | set("wxy")
        and w[-2] in _VOWELS
        and w[-3] not in _VOWELS
        and len(re.findall(r"[aeiou]+", w)) == 1
    ):
        w = w + w[-1] + "ing"
    else:
        w += "ing"
    return f"{w} {rest}".strip()
