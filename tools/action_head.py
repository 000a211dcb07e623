"""The trained linear action head's file format: :func:`save_action_head`, :func:`load_action_head`.

A trained linear head replaces zero-shot scoring in :class:`tools.actions.ActionRecognizer`. Its
file format, a ``.safetensors`` (or a ``.pt`` dict of the same names) holding:

* tensors ``verb.weight`` ``(V, D)``, ``verb.bias`` ``(V,)``, ``noun.weight`` ``(N, D)``,
  ``noun.bias`` ``(N,)``: logits = ``W @ e + b`` over the unit-length segment embedding ``e``;
* metadata ``format`` = ``vidagent.action_head``, ``format_version`` = ``1``, ``embedding_model``
  (the encoder it was trained on) and ``taxonomy`` (JSON ``{"verbs": [...], "nouns": [...]}``, the
  class order of the rows).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agent.errors import ConfigError
from tools.taxonomy import Taxonomy

HEAD_FORMAT = "vidagent.action_head"


@dataclass
class _Head:
    verb_w: np.ndarray
    verb_b: np.ndarray
    noun_w: np.ndarray
    noun_b: np.ndarray


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
