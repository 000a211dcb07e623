"""Zero-shot (or linear-head) verb and noun labels per segment, against a verb/noun taxonomy.

Taxonomy files use Ego4D LTA's format, ``{"verbs": [...], "nouns": [...]}`` (115/478 classes in v1,
117/521 in v2; other keys are ignored). Entries such as ``take_(pick,_grab,_get)`` are normalized by
:func:`parse_class`: the label is the head (``take``), the parenthesized words are synonyms that the
zero-shot prompt ensemble averages over. A single parenthesized word is a qualifier, not a synonym:
``bat_(sports)`` is prompted as ``bat (sports)``, and labelled so when the head alone is ambiguous
(``nut (food)`` vs ``nut (tool)``). Without a file, the small
built-in :data:`BASIC_TAXONOMY` is used.

Scoring: a segment's visual embedding (see :mod:`tools.embedder`) against each class's text
embedding (the normalized mean over prompts, one per synonym), scaled by the model's learned
temperature and softmaxed over the verbs and, separately, over the nouns. A (verb, noun) pair scores
``p(verb) * p(noun)``; the ``top_k`` best pairs become :class:`~agent.records.ActionLabel`s, and the
full probability matrices are stored as arrays (``verb_probs``, ``noun_probs``) for anticipation.
Class text embeddings are computed once per (model, taxonomy, prompts) and kept in the store.

A trained linear head (:func:`save_action_head`) replaces zero-shot scoring. Its file format, a
``.safetensors`` (or a ``.pt`` dict of the same names) holding:

* tensors ``verb.weight`` ``(V, D)``, ``verb.bias`` ``(V,)``, ``noun.weight`` ``(N, D)``,
  ``noun.bias`` ``(N,)``: logits = ``W @ e + b`` over the unit-length segment embedding ``e``;
* metadata ``format`` = ``vidagent.action_head``, ``format_version`` = ``1``, ``embedding_model``
  (the encoder it was trained on) and ``taxonomy`` (JSON ``{"verbs": [...], "nouns": [...]}``, the
  class order of the rows).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from agent.errors import ConfigError
from agent.records import ActionLabel, Record, Segment
from tools.embedder import DEFAULT_VISUAL_MODEL, VisualEncoder
from tools.models import (
    ModelParams,
    ToolOutput,
    model_fingerprint,
    resolve_device,
    resolve_dtype,
)
from tools.video import FrameBatch

HEAD_FORMAT = "vidagent.action_head"
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
        """Read an Ego4D-style taxonomy JSON file."""
        p = Path(path)
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


class ActionParams(ModelParams):
    """Action recognizer settings. ``taxonomy``/``head`` are files; keys use their content."""

    model: str = Field(default=DEFAULT_VISUAL_MODEL, min_length=1)
    batch_size: int = Field(default=32, ge=1)
    taxonomy: Path | None = Field(default=None, description="Ego4D-style JSON; None: built-in")
    head: Path | None = Field(default=None, description="Trained linear head; None: zero-shot")
    top_k: int = Field(default=5, ge=1, le=100)
    verb_template: str = "a photo of a person {verb_ing}."
    noun_template: str = "a photo of a {noun}."
    synonyms: bool = Field(default=True, description="Average prompts over a class's synonyms")

    @field_validator("verb_template", "noun_template")
    @classmethod
    def _placeholders(cls, template: str) -> str:
        try:
            template.format(verb="x", verb_ing="x", noun="x")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"bad placeholder {exc} (use {{verb}}, {{verb_ing}} or {{noun}})"
            ) from None
        return template


@dataclass
class _Head:
    verb_w: np.ndarray
    verb_b: np.ndarray
    noun_w: np.ndarray
    noun_b: np.ndarray


def _file_digest(path: Path, hasher: Callable[[Path], str] | None) -> str:
    from agent.store import file_digest

    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    return hasher(path) if hasher else file_digest(path)


class ActionRecognizer:
    """Perception tool: top-k (verb, noun) labels per segment, plus full probability arrays."""

    name = "actions"
    version = "1"

    def __init__(self, params: ActionParams | None = None, *, store: Any = None) -> None:
        self.params = params or ActionParams()
        p = self.params
        self.store = store
        self.encoder = VisualEncoder(
            p.model, device=p.device, dtype=p.dtype, batch_size=p.batch_size, revision=p.revision
        )
        self._taxonomy: Taxonomy | None = None
        self._head: _Head | None = None
        self._text: tuple[np.ndarray, np.ndarray] | None = None
        self._fields: dict[str, Any] | None = None

    @property
    def taxonomy(self) -> Taxonomy:
        if self._taxonomy is None:
            p = self.params
            if p.head is not None:
                self._taxonomy, self._head = load_action_head(p.head)
                if p.taxonomy is not None and Taxonomy.load(p.taxonomy).digest != (
                    self._taxonomy.digest
                ):
                    raise ConfigError(f"{p.head}: its taxonomy differs from {p.taxonomy}")
            else:
                self._taxonomy = Taxonomy.load(p.taxonomy) if p.taxonomy else Taxonomy.basic()
        return self._taxonomy

    def cache_params(self, hasher: Callable[[Path], str] | None = None) -> dict[str, Any]:
        if self._fields is None:
            p = self.params
            fields = p.cache_fields()
            fields["model"] = model_fingerprint(p.model, p.revision, hasher=hasher)
            fields["taxonomy"] = self.taxonomy.digest
            fields["head"] = _file_digest(p.head, hasher) if p.head else None
            self._fields = fields
        return {**self._fields, "dtype": resolve_dtype(self.params.dtype, self._device())}

    def _device(self) -> str:
        return resolve_device(self.params.device)

    def encoder_signature(self) -> tuple[Any, ...]:
        p = self.params
        return (p.model, p.revision, p.device, p.dtype, p.frames_per_segment)

    def setup(self) -> None:
        _ = self.taxonomy  # reads the head too, when there is one
        if self._head is None:
            self.class_embeddings()

    def class_embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        """Unit text embeddings of the verb and noun classes, ``(V, D)`` and ``(N, D)`` (zero-shot
        weights; scaled by :attr:`VisualEncoder.logit_scale` they initialize a linear head)."""
        if self._text is None:
            self._text = self._text_embeddings()
        return self._text

    def _prompts(self, classes: list[ActionClass], template: str) -> tuple[list[str], list[int]]:
        texts, owner = [], []
        for i, c in enumerate(classes):
            for name in c.names if self.params.synonyms else [c.label]:
                texts.append(template.format(verb=name, verb_ing=gerund(name), noun=name))
                owner.append(i)
        return texts, owner

    def _class_embeddings(self, classes: list[ActionClass], template: str) -> np.ndarray:
        from tools.embedder import l2_normalize

        texts, owner = self._prompts(classes, template)
        emb = self.encoder.encode_text(texts)
        sums = np.zeros((len(classes), emb.shape[1]), np.float32)
        np.add.at(sums, np.asarray(owner), emb)
        return l2_normalize(sums)

    def _text_embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        """Verb and noun class embeddings, from the store when it has them."""
        p = self.params
        tax = self.taxonomy

        def compute() -> tuple[dict[str, Any], dict[str, np.ndarray]]:
            verbs = self._class_embeddings(tax.verb_classes, p.verb_template)
            nouns = self._class_embeddings(tax.noun_classes, p.noun_template)
            return {"verbs": len(verbs), "nouns": len(nouns)}, {"verbs": verbs, "nouns": nouns}

        if self.store is None:
            _, arrays = compute()
            return arrays["verbs"], arrays["nouns"]
        fields = self.cache_params(hasher=self.store.video_hash)
        params = {k: fields[k] for k in ("model", "dtype", "verb_template", "noun_template")}
        params["synonyms"] = p.synonyms
        result = self.store.get_or_compute(
            f"taxonomy:{tax.digest}", "actions.text", self.version, params, compute
        )
        return result.array("verbs"), result.array("nouns")

    def probabilities(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(n, V)`` verb and ``(n, N)`` noun probabilities for ``n`` unit segment embeddings."""
        self.setup()
        e = embeddings.astype(np.float32)
        if self._head is not None:
            h = self._head
            if h.verb_w.shape[1] != e.shape[1]:
                raise ConfigError(
                    f"{self.params.head}: head expects {h.verb_w.shape[1]}-d embeddings, "
                    f"model {self.params.model} gives {e.shape[1]}-d"
                )
            return _softmax(e @ h.verb_w.T + h.verb_b), _softmax(e @ h.noun_w.T + h.noun_b)
        assert self._text is not None
        scale = self.encoder.logit_scale
        verbs, nouns = self._text
        return _softmax(scale * e @ verbs.T), _softmax(scale * e @ nouns.T)

    def labels(self, verb_p: np.ndarray, noun_p: np.ndarray) -> list[list[ActionLabel]]:
        """The ``top_k`` (verb, noun) pairs by ``p(verb) * p(noun)`` for each row."""
        k = self.params.top_k
        verbs = [c.label for c in self.taxonomy.verb_classes]
        nouns = [c.label for c in self.taxonomy.noun_classes]
        out = []
        for vp, np_ in zip(verb_p, noun_p, strict=True):
            top_v = np.argsort(-vp, kind="stable")[:k]
            top_n = np.argsort(-np_, kind="stable")[:k]
            pairs = sorted(
                ((float(vp[v] * np_[n]), int(v), int(n)) for v in top_v for n in top_n),
                key=lambda t: (-t[0], t[1], t[2]),
            )[:k]
            out.append(
                [
                    ActionLabel(
                        verb=verbs[v],
                        noun=nouns[n],
                        score=min(1.0, max(0.0, s)),
                        verb_score=float(vp[v]),
                        noun_score=float(np_[n]),
                    )
                    for s, v, n in pairs
                ]
            )
        return out

    def run_embeddings(self, embeddings: np.ndarray) -> ToolOutput:
        """Labels from segment embeddings already computed with the same encoder."""
        verb_p, noun_p = self.probabilities(embeddings)
        items = [[a.model_dump() for a in row] for row in self.labels(verb_p, noun_p)]
        return ToolOutput(items, {"verb_probs": verb_p, "noun_probs": noun_p})

    def run(self, frames: Sequence[FrameBatch]) -> ToolOutput:
        return self.run_embeddings(self.encoder.encode_segments(frames))

    def summary(self, output: ToolOutput) -> dict[str, Any]:
        tax = self.taxonomy
        return {
            "taxonomy": tax.source,
            "verbs": [c.label for c in tax.verb_classes],
            "nouns": [c.label for c in tax.noun_classes],
        }

    def annotate(
        self, segments: Sequence[Segment], value: dict[str, Any], key: str
    ) -> list[Segment]:
        rows = value["items"]
        return [
            seg.model_copy(update={"actions": [ActionLabel.model_validate(a) for a in row]})
            for seg, row in zip(segments, rows, strict=True)
        ]


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


_HEAD_TENSORS = ("verb.weight", "verb.bias", "noun.weight", "noun.bias")


def save_action_head(
    path: str | Path,
    *,
    verb_weight: np.ndarray,
    verb_bias: np.ndarray,
    noun_weight: np.ndarray,
    noun_bias: np.ndarray,
    taxonomy: Taxonomy,
    embedding_model: str,
) -> Path:
    """Write a linear head in the format :func:`load_action_head` reads (``.safetensors``)."""
    from safetensors.numpy import save_file

    tensors = dict(
        zip(_HEAD_TENSORS, (verb_weight, verb_bias, noun_weight, noun_bias), strict=True)
    )
    _check_head(tensors, taxonomy, str(path))
    meta = {
        "format": HEAD_FORMAT,
        "format_version": "1",
        "embedding_model": embedding_model,
        "taxonomy": json.dumps({"verbs": list(taxonomy.verbs), "nouns": list(taxonomy.nouns)}),
    }
    arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
    save_file(arrays, str(path), metadata=meta)
    return Path(path)


def _check_head(tensors: dict[str, np.ndarray], taxonomy: Taxonomy, where: str) -> None:
    missing = [k for k in _HEAD_TENSORS if k not in tensors]
    if missing:
        raise ConfigError(f"{where}: action head lacks tensors {missing}")
    v, n = len(taxonomy.verbs), len(taxonomy.nouns)
    vw, vb, nw, nb = (tensors[k] for k in _HEAD_TENSORS)
    if vw.ndim != 2 or nw.ndim != 2 or vw.shape[1] != nw.shape[1]:
        shapes = f"{vw.shape} and {nw.shape}"
        raise ConfigError(f"{where}: weights must be (classes, dim) with one dim, got {shapes}")
    if vw.shape[0] != v or vb.shape != (v,) or nw.shape[0] != n or nb.shape != (n,):
        raise ConfigError(
            f"{where}: head shapes {vw.shape}/{vb.shape}/{nw.shape}/{nb.shape} do not match "
            f"the taxonomy's {v} verbs and {n} nouns"
        )


def load_action_head(path: str | Path) -> tuple[Taxonomy, _Head]:
    """Read a head written by :func:`save_action_head` (or a ``.pt`` dict with the same keys)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"action head {p}: no such file")
    try:
        if p.suffix == ".safetensors":
            from safetensors import safe_open
            from safetensors.numpy import load_file

            tensors = load_file(str(p))
            with safe_open(str(p), framework="numpy") as fh:
                meta = dict(fh.metadata() or {})
        else:
            import torch

            blob = torch.load(p, map_location="cpu", weights_only=True)
            tensors = {k: blob[k].float().numpy() for k in _HEAD_TENSORS if k in blob}
            meta = {k: blob[k] for k in ("format", "taxonomy", "embedding_model") if k in blob}
            if isinstance(meta.get("taxonomy"), dict):
                meta["taxonomy"] = json.dumps(meta["taxonomy"])
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"action head {p}: unreadable ({exc})") from exc
    if meta.get("format") != HEAD_FORMAT or "taxonomy" not in meta:
        raise ConfigError(f"action head {p}: not a {HEAD_FORMAT} file (metadata {sorted(meta)})")
    taxonomy = Taxonomy.from_dict(json.loads(meta["taxonomy"]), str(p))
    _check_head(tensors, taxonomy, str(p))
    head = _Head(*(np.asarray(tensors[k], np.float32) for k in _HEAD_TENSORS))
    return taxonomy, head
