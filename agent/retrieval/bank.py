"""The example bank: in-context examples with their embeddings in a FAISS index.

An :class:`Example` is what a prompt shows for one solved instance of a task (the observed action
sequence and the next 20 actions for Ego4D anticipation; a question with options and its answer for
QA), plus the video/clip it came from, so selection can exclude the query's own video (leakage).

A saved bank is a directory:

- ``manifest.json``: format name and version, embedder id and how to load it, dimension, metric,
  count, index parameters, per-task counts and a hash of ``examples.jsonl``. It is checked on
  load: a bank built with another embedder, or whose files disagree with it, is refused with
  :class:`IndexMismatchError` / :class:`BankFormatError` instead of being silently mis-searched.
- ``examples.jsonl``: one :class:`Example` per line, in index order (row i is FAISS id i).
- ``index.faiss``: the FAISS index (see :mod:`vidagent.retrieval.faiss_index`).

The old manifest is removed first and the new one written last (files are replaced atomically), so
an interrupted save leaves no manifest and is refused on load rather than half-read.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, JsonValue, ValidationError

from vidagent.core.errors import ConfigError
from vidagent.core.records import Record
from vidagent.retrieval.errors import BankFormatError, IndexMismatchError
from vidagent.retrieval.faiss_index import (
    IndexParams,
    IndexType,
    create_index,
    index_kind,
    is_inner_product,
    read_index,
    single_thread,
    to_search_device,
    tune_index,
    write_index,
)
from vidagent.retrieval.manifest import (
    EXAMPLES,
    INDEX,
    MANIFEST,
    BankManifest,
    check_embedder,
    content_hash,
    read_manifest,
)
from vidagent.retrieval.text_embedder import TextEmbedder, normalize_rows

ProgressFn = Callable[[int, int], None]


class Example(Record):
    """One in-context example: the text a prompt shows, the answer, and where it came from."""

    task: str = Field(min_length=1, description="e.g. 'lta', 'qa'")
    input: str = Field(description="Text representation shown in the prompt; what is embedded")
    target: str = Field(description="The answer / continuation shown after the input")
    video_id: str = Field(min_length=1, description="Source video; excluded for its own queries")
    clip_id: str | None = Field(default=None, description="Source clip, if videos are split")
    key: str | None = Field(default=None, description="Benchmark key ('{clip_uid}_{action_idx}')")
    metadata: dict[str, JsonValue] = Field(default_factory=dict)

    @property
    def sources(self) -> frozenset[str]:
        """Ids that identify where this example came from (video and clip)."""
        return frozenset(s for s in (self.video_id, self.clip_id) if s)


def _example_lines(examples: Sequence[Example]) -> bytes:
    return b"".join(ex.model_dump_json().encode() + b"\n" for ex in examples)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class ExampleBank:
    """Examples plus a FAISS index over their embeddings.

    Build with :meth:`build` (embeds the inputs) or :meth:`from_vectors`; persist with
    :meth:`save` / :meth:`load`. Selection strategies live in :mod:`vidagent.retrieval.select`; this
    class offers the primitives they need: :meth:`search`, :meth:`vectors`, source/task lookups.
    """

    def __init__(
        self,
        examples: Sequence[Example],
        index: Any,
        manifest: BankManifest,
        embedder: TextEmbedder | None = None,
        gpu: bool | None = None,
    ) -> None:
        self.examples: list[Example] = list(examples)
        self.manifest = manifest
        self.embedder = embedder
        self._index = index
        self._search_index, self._gpu_resources = to_search_device(index, manifest.index, gpu)
        self._build_lookups()

    def _build_lookups(self) -> None:
        by_source: dict[str, list[int]] = {}
        groups: dict[tuple[str, str], int] = {}
        task_names: dict[str, int] = {}
        dup = np.empty(len(self.examples), dtype=np.int64)
        task = np.empty(len(self.examples), dtype=np.int32)
        for i, ex in enumerate(self.examples):
            for source in ex.sources:
                by_source.setdefault(source, []).append(i)
            dup[i] = groups.setdefault((ex.input.strip(), ex.target.strip()), len(groups))
            task[i] = task_names.setdefault(ex.task, len(task_names))
        self._by_source = {s: np.asarray(ids, dtype=np.int64) for s, ids in by_source.items()}
        self.duplicate_group = dup
        self.task_code = task
        self._task_names = task_names

    # --- construction ----------------------------------------------------------------------

    @classmethod
    def from_vectors(
        cls,
        examples: Sequence[Example],
        vectors: np.ndarray,
        *,
        embedder_id: str,
        embedder_model: str | None = None,
        index_type: IndexType = "flat",
        index_params: IndexParams | None = None,
        embedder: TextEmbedder | None = None,
        gpu: bool | None = None,
    ) -> ExampleBank:
        """A bank from precomputed vectors (normalized here), e.g. from another pipeline."""
        examples = list(examples)
        matrix = np.asarray(vectors)
        if matrix.ndim != 2 or matrix.shape[0] != len(examples) or matrix.shape[1] < 1:
            raise ConfigError(
                f"vectors must have shape ({len(examples)}, dim), got {tuple(matrix.shape)}"
            )
        if not examples:
            raise ConfigError("no examples to index: the example bank would be empty")
        if not np.isfinite(matrix).all():
            raise ConfigError("vectors contain NaN or infinite values")
        params = (index_params or IndexParams()).model_copy(update={"type": index_type})
        index = create_index(normalize_rows(matrix), params)
        tasks: dict[str, int] = {}
        for ex in examples:
            tasks[ex.task] = tasks.get(ex.task, 0) + 1
        manifest = BankManifest(
            embedder=embedder_id,
            embedder_model=embedder_model,
            dim=int(matrix.shape[1]),
            count=len(examples),
            index=params,
            tasks=tasks,
            examples_hash=content_hash(_example_lines(examples)),
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        return cls(examples, index, manifest, embedder=embedder, gpu=gpu)

    @classmethod
    def build(
        cls,
        examples: Iterable[Example],
        embedder: TextEmbedder,
        *,
        index_type: IndexType = "flat",
        index_params: IndexParams | None = None,
        batch_size: int = 256,
        progress: ProgressFn | None = None,
        gpu: bool | None = None,
    ) -> ExampleBank:
        """Embed every example's ``input`` with ``embedder`` and index the vectors.

        ``progress(done, total)`` is called after each batch of ``batch_size`` texts.
        """
        examples = list(examples)
        if not examples:
            raise ConfigError("no examples to index: the example bank would be empty")
        texts = [ex.input for ex in examples]
        chunks: list[np.ndarray] = []
        for start in range(0, len(texts), batch_size):
            chunks.append(embedder.embed(texts[start : start + batch_size]))
            if progress is not None:
                progress(min(start + batch_size, len(texts)), len(texts))
        return cls.from_vectors(
            examples,
            np.concatenate(chunks),
            embedder_id=embedder.id,
            embedder_model=getattr(embedder, "model_arg", None),
            index_type=index_type,
            index_params=index_params,
            embedder=embedder,
            gpu=gpu,
        )

    # --- persistence -----------------------------------------------------------------------

    def save(self, directory: Path | str, *, overwrite: bool = False) -> Path:
        """Write the bank to ``directory`` (created if needed); the manifest goes last."""
        path = Path(directory)
        if (path / MANIFEST).exists() and not overwrite:
            raise BankFormatError(path, "already holds an example bank (use overwrite to replace)")
        if path.exists() and not path.is_dir():
            raise BankFormatError(path, "exists and is not a directory")
        path.mkdir(parents=True, exist_ok=True)
        lines = _example_lines(self.examples)
        manifest = self.manifest.model_copy(update={"examples_hash": content_hash(lines)})
        (path / MANIFEST).unlink(missing_ok=True)
        _write_atomic(path / EXAMPLES, lines)
        tmp_index = path / f".{INDEX}.tmp{os.getpid()}"
        write_index(self._index, tmp_index)
        os.replace(tmp_index, path / INDEX)
        _write_atomic(path / MANIFEST, manifest.model_dump_json(indent=2).encode() + b"\n")
        self.manifest = manifest
        return path

    @staticmethod
    def read_manifest(directory: Path | str) -> BankManifest:
        """The validated manifest of a saved bank (no index or examples are read)."""
        return read_manifest(directory)

    @classmethod
    def load(
        cls,
        directory: Path | str,
        embedder: TextEmbedder | None = None,
        *,
        gpu: bool | None = None,
    ) -> ExampleBank:
        """Load a saved bank, checking every file against the manifest and ``embedder``.

        Without an embedder the bank can be inspected and searched with vectors only.
        """
        path = Path(directory)
        manifest = cls.read_manifest(path)
        if embedder is not None:
            check_embedder(manifest, embedder, path)
        try:
            lines = (path / EXAMPLES).read_bytes()
        except OSError as exc:
            raise BankFormatError(path, f"cannot read {EXAMPLES} ({exc.strerror})") from exc
        if content_hash(lines) != manifest.examples_hash:
            raise BankFormatError(path, f"{EXAMPLES} does not match the manifest (hash differs)")
        try:
            examples = [Example.model_validate_json(line) for line in lines.splitlines() if line]
        except ValidationError as exc:
            raise BankFormatError(path, f"{EXAMPLES} has an invalid record: {exc}") from exc
        if not (path / INDEX).is_file():
            raise BankFormatError(path, f"no {INDEX}")
        try:
            index = read_index(path / INDEX)
        except RuntimeError as exc:
            raise BankFormatError(path, f"{INDEX} is unreadable or corrupt") from exc
        problems = []
        if len(examples) != manifest.count:
            problems.append(f"{len(examples)} examples")
        if index.ntotal != manifest.count:
            problems.append(f"{index.ntotal} vectors in the index")
        if index.d != manifest.dim:
            problems.append(f"index dimension {index.d}")
        if index_kind(index) != manifest.index.type or not is_inner_product(index):
            problems.append(f"index type {index_kind(index)}")  # e.g. index.faiss swapped
        if problems:
            raise BankFormatError(
                path,
                f"files disagree with the manifest (count {manifest.count}, dim {manifest.dim}, "
                f"{manifest.index.type}): found {', '.join(problems)}",
            )
        tune_index(index, manifest.index)
        return cls(examples, index, manifest, embedder=embedder, gpu=gpu)

    # --- queries ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def dim(self) -> int:
        return self.manifest.dim

    def tune(self, *, ef_search: int | None = None, nprobe: int | None = None) -> None:
        """Change search-time recall/speed trade-offs (HNSW efSearch, IVF nprobe)."""
        update: dict[str, int] = {}
        if ef_search is not None:
            update["hnsw_ef_search"] = ef_search
        if nprobe is not None:
            update["ivf_nprobe"] = nprobe
        params = IndexParams.model_validate(self.manifest.index.model_dump() | update)
        self.manifest = self.manifest.model_copy(update={"index": params})
        tune_index(self._index, params)
        if self._search_index is not self._index:  # pragma: no cover - GPU clone
            tune_index(self._search_index, params)

    def embed_query(self, text: str) -> np.ndarray:
        """The query vector for ``text`` (needs the embedder the bank was loaded with)."""
        if self.embedder is None:
            raise ConfigError("this bank was loaded without an embedder: pass one to search text")
        return self.embedder.embed([text])[0]

    def query_vector(self, query: str | np.ndarray) -> np.ndarray:
        """A normalized float32 vector of the bank's dimension, from text or a vector."""
        if isinstance(query, str):
            return self.embed_query(query)
        vector = np.asarray(query, dtype=np.float32).ravel()
        if vector.shape[0] != self.dim:
            raise IndexMismatchError(
                f"query vector has dimension {vector.shape[0]} but the bank's embedder "
                f"{self.manifest.embedder!r} has dimension {self.dim}"
            )
        return normalize_rows(vector)[0]

    def search(self, vector: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``(similarities, ids)`` of the ``n`` nearest examples, best first; -1 ids dropped."""
        n = min(int(n), len(self))
        if n <= 0:
            return np.empty(0, dtype=np.float32), np.empty(0, dtype=np.int64)
        with single_thread():
            sims, ids = self._search_index.search(vector.reshape(1, -1), n)
        keep = ids[0] >= 0
        return sims[0][keep], ids[0][keep].astype(np.int64)

    def exact_search(self, vector: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Exhaustive search over all vectors, for when an approximate index runs dry."""
        sims = self.vectors(np.arange(len(self), dtype=np.int64)) @ vector
        order = np.argsort(-sims, kind="stable")[: min(int(n), len(self))]
        return sims[order], order.astype(np.int64)

    @property
    def is_exact(self) -> bool:
        return self.manifest.index.type == "flat"

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored (normalized) vectors of rows ``ids``, reconstructed from the index."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if ids.size == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.asarray(self._index.reconstruct_batch(ids), dtype=np.float32)

    def ids_of_sources(self, sources: Iterable[str]) -> np.ndarray:
        """Rows whose video or clip id is in ``sources`` (sorted, unique)."""
        parts = [self._by_source[s] for s in set(sources) if s in self._by_source]
        if not parts:
            return np.empty(0, dtype=np.int64)
        return np.unique(np.concatenate(parts))

    def task_id(self, task: str) -> int | None:
        """The internal code of ``task`` in :attr:`task_code`, or None if the bank has none."""
        return self._task_names.get(task)
