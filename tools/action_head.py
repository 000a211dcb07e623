"""The trained linear action head's file format: :func:`save_action_head`, :func:`load_action_head`.

A trained linear head replaces zero-shot scoring in
:class:`vidagent.tools.actions.ActionRecognizer`. Its file format, a ``.safetensors`` (or a ``.pt``
dict of the same names) holding:

* tensors ``verb.weight`` ``(V, D)``, ``verb.bias`` ``(V,)``, ``noun.weight`` ``(N, D)``,
  ``noun.bias`` ``(N,)``: logits = ``W @ e + b`` over the unit-length segment embedding ``e``;
* metadata ``format`` = ``vidagent.action_head``, ``format_version`` = ``1``, ``embedding_model``
  (the encoder it was trained on) and ``taxonomy`` (JSON ``{"verbs": [...], "nouns": [...]}``, the
  class order of the rows).

A small MLP head (``vidagent train actions --hidden H``) adds ``hidden.weight`` ``(H, D)`` and
``hidden.bias`` ``(H,)``, shared by both outputs: logits = ``W @ relu(A @ e + c) + b`` with ``W``
``(V, H)`` / ``(N, H)``; its ``format_version`` is ``2``. Linear heads stay version 1, unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidagent.core.errors import ConfigError
from vidagent.tools.taxonomy import Taxonomy

HEAD_FORMAT = "vidagent.action_head"


@dataclass
class _Head:
    verb_w: np.ndarray
    verb_b: np.ndarray
    noun_w: np.ndarray
    noun_b: np.ndarray
    hidden_w: np.ndarray | None = None
    hidden_b: np.ndarray | None = None

    @property
    def input_dim(self) -> int:
        """The embedding size the head reads."""
        return int((self.hidden_w if self.hidden_w is not None else self.verb_w).shape[1])

    def logits(self, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Verb and noun logits of ``(n, D)`` embeddings."""
        if self.hidden_w is not None and self.hidden_b is not None:
            e = np.maximum(e @ self.hidden_w.T + self.hidden_b, 0.0)
        return e @ self.verb_w.T + self.verb_b, e @ self.noun_w.T + self.noun_b


_HEAD_TENSORS = ("verb.weight", "verb.bias", "noun.weight", "noun.bias")
_HIDDEN_TENSORS = ("hidden.weight", "hidden.bias")


def save_action_head(
    path: str | Path,
    *,
    verb_weight: np.ndarray,
    verb_bias: np.ndarray,
    noun_weight: np.ndarray,
    noun_bias: np.ndarray,
    taxonomy: Taxonomy,
    embedding_model: str,
    hidden_weight: np.ndarray | None = None,
    hidden_bias: np.ndarray | None = None,
) -> Path:
    """Write a head in the format :func:`load_action_head` reads (``.safetensors``); with
    ``hidden_weight``/``hidden_bias`` an MLP head (format version 2)."""
    from safetensors.numpy import save_file

    tensors = dict(
        zip(_HEAD_TENSORS, (verb_weight, verb_bias, noun_weight, noun_bias), strict=True)
    )
    if (hidden_weight is None) != (hidden_bias is None):
        raise ConfigError(f"{path}: an MLP head needs both hidden_weight and hidden_bias")
    if hidden_weight is not None and hidden_bias is not None:
        tensors.update(zip(_HIDDEN_TENSORS, (hidden_weight, hidden_bias), strict=True))
    _check_head(tensors, taxonomy, str(path))
    meta = {
        "format": HEAD_FORMAT,
        "format_version": "2" if hidden_weight is not None else "1",
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
    if "hidden.weight" in tensors or "hidden.bias" in tensors:
        hw, hb = tensors.get("hidden.weight"), tensors.get("hidden.bias")
        if hw is None or hb is None or hw.ndim != 2 or hb.shape != (hw.shape[0],):
            raise ConfigError(f"{where}: an MLP head needs hidden.weight (H, D), hidden.bias (H,)")
        if hw.shape[0] != vw.shape[1]:
            raise ConfigError(
                f"{where}: hidden layer of {hw.shape[0]} units, output weights read {vw.shape[1]}"
            )
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
            names = (*_HEAD_TENSORS, *_HIDDEN_TENSORS)
            tensors = {k: blob[k].float().numpy() for k in names if k in blob}
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
    if "hidden.weight" in tensors:
        head.hidden_w = np.asarray(tensors["hidden.weight"], np.float32)
        head.hidden_b = np.asarray(tensors["hidden.bias"], np.float32)
    return taxonomy, head
