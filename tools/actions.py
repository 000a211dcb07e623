"""Zero-shot (or linear-head) verb and noun labels per segment, against a verb/noun taxonomy.

Taxonomies (Ego4D LTA's JSON format, class parsing, the built-in default) live in
:mod:`vidagent.tools.taxonomy`; the trained linear head's file format in
:mod:`vidagent.tools.action_head`. Their public names are re-exported here.

Scoring: a segment's visual embedding (see :mod:`vidagent.tools.visual_embedder`) against each
class's text embedding (the normalized mean over prompts, one per synonym), scaled by the model's
learned temperature and softmaxed over the verbs and, separately, over the nouns. A (verb, noun)
pair scores ``p(verb) * p(noun)``; the ``top_k`` best pairs become
:class:`~vidagent.core.records.ActionLabel`s, and the full probability matrices are stored as arrays
(``verb_probs``, ``noun_probs``) for anticipation. Class text embeddings are computed once per
(model, taxonomy, prompts) and kept in the store.

A trained linear head (:func:`save_action_head`) replaces zero-shot scoring.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from vidagent.core.errors import ConfigError
from vidagent.core.records import ActionLabel, Segment
from vidagent.tools.action_head import HEAD_FORMAT, load_action_head, save_action_head
from vidagent.tools.action_head import _Head as _Head
from vidagent.tools.models import (
    ModelParams,
    ToolOutput,
    model_fingerprint,
    resolve_device,
    resolve_dtype,
)
from vidagent.tools.taxonomy import BASIC_TAXONOMY, ActionClass, Taxonomy, gerund, parse_class
from vidagent.tools.video import FrameBatch
from vidagent.tools.visual_embedder import DEFAULT_VISUAL_MODEL, VisualEncoder

__all__ = [
    "BASIC_TAXONOMY",
    "HEAD_FORMAT",
    "ActionClass",
    "ActionParams",
    "ActionRecognizer",
    "Taxonomy",
    "gerund",
    "load_action_head",
    "parse_class",
    "save_action_head",
]


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


def _file_digest(path: Path, hasher: Callable[[Path], str] | None) -> str:
    from vidagent.store.perception import file_digest

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
        from vidagent.tools.visual_embedder import l2_normalize

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
            if h.input_dim != e.shape[1]:
                raise ConfigError(
                    f"{self.params.head}: head expects {h.input_dim}-d embeddings, "
                    f"model {self.params.model} gives {e.shape[1]}-d"
                )
            verb_logits, noun_logits = h.logits(e)
            return _softmax(verb_logits), _softmax(noun_logits)
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
