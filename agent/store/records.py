"""Records of the perception store: stored results, their metadata, and store reports.

Split out of :mod:`vidagent.store` (which re-exports the public names): :class:`StoredResult` loads
a record's arrays from the paths :class:`vidagent.store.PerceptionStore` gives it, and
:func:`_array_ok` checks an array file against its :class:`ArrayInfo` without reading its data.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import numpy as np
from pydantic import BaseModel, Field

from vidagent.core.errors import StoreError
from vidagent.core.records import Record

# numpy parses .npy headers with ast.literal_eval, and CPython 3.11's AST constructor is not
# thread-safe (SystemError "AST constructor recursion depth mismatch", cpython gh-106905 and
# relatives): header parsing is serialised. It is microseconds; array data is read outside the lock.
_NPY_HEADER_LOCK = threading.Lock()

T = TypeVar("T", bound=BaseModel)
JSONValue = dict[str, Any]
Arrays = Mapping[str, np.ndarray]


class ArrayInfo(Record):
    """What a stored array should look like: checked against its file on every
    :meth:`~vidagent.store.PerceptionStore.get`."""

    dtype: str
    shape: tuple[int, ...]
    size: int = Field(ge=0, description="Bytes of the .npy file")


class StoredMeta(Record):
    """Where a stored result came from."""

    key: str
    video_hash: str
    tool: str
    version: str
    params: dict[str, Any]
    created_at: datetime
    arrays: dict[str, ArrayInfo] = Field(default_factory=dict)


class StoreStats(Record):
    """Size of a store: records per tool and bytes on disk (orphan files included)."""

    records: int
    records_per_tool: dict[str, int]
    array_files: int
    array_bytes: int
    db_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.array_bytes + self.db_bytes


class GcReport(Record):
    """What :meth:`~vidagent.store.PerceptionStore.gc` removed."""

    files_removed: int
    bytes_freed: int
    stale_records_removed: int
    file_hashes_removed: int


class Computed(NamedTuple):
    """What a ``compute`` callback of :meth:`~vidagent.store.PerceptionStore.get_or_compute`
    returns."""

    value: JSONValue | BaseModel
    arrays: Arrays | None = None


class StoredResult:
    """One record: its JSON ``value``, its ``meta``, and arrays loaded from disk when asked for.

    ``cached`` is True when :meth:`~vidagent.store.PerceptionStore.get_or_compute` found it instead
    of computing it.
    """

    def __init__(self, value: JSONValue, meta: StoredMeta, paths: dict[str, Path], cached: bool):
        self.value = value
        self.meta = meta
        self.cached = cached
        self._paths = paths

    @property
    def key(self) -> str:
        return self.meta.key

    @property
    def array_names(self) -> tuple[str, ...]:
        return tuple(self._paths)

    def array(self, name: str, *, mmap: bool = False) -> np.ndarray:
        """Load array ``name`` (``mmap=True``: read-only memory map, nothing read up front).

        Raises ``KeyError`` for an unknown name and :class:`StoreError` if the file is gone or
        damaged since the record was read (a concurrent delete, or a re-put followed by gc).
        """
        path = self._paths[name]
        info = self.meta.arrays[name]
        try:
            with _NPY_HEADER_LOCK:
                arr: np.ndarray = np.load(path, mmap_mode="r", allow_pickle=False)
            if not mmap:
                arr = np.array(arr)  # read into memory, outside the header lock
        except (OSError, ValueError) as exc:
            raise StoreError(f"{path}: array {name!r} of {self.key} is unreadable: {exc}") from exc
        if arr.dtype.str != info.dtype or arr.shape != info.shape:
            raise StoreError(f"{path}: array {name!r} of {self.key} changed since it was read")
        return arr

    def arrays(self, *, mmap: bool = False) -> dict[str, np.ndarray]:
        return {name: self.array(name, mmap=mmap) for name in self._paths}

    def value_as(self, model: type[T]) -> T:
        """The value validated as pydantic ``model`` (the inverse of putting a model)."""
        return model.model_validate(self.value)

    def __repr__(self) -> str:
        m = self.meta
        return f"StoredResult({m.tool}@{m.version}, key={m.key[:12]}, arrays={list(self._paths)})"


def _array_ok(path: Path, info: ArrayInfo) -> bool:
    """Whether ``path`` holds a complete .npy of ``info``'s dtype and shape (header + size only)."""
    try:
        if os.stat(path).st_size != info.size:
            return False
        with open(path, "rb") as f:
            major, _minor = np.lib.format.read_magic(f)
            read_header = (
                np.lib.format.read_array_header_1_0
                if major == 1
                else np.lib.format.read_array_header_2_0
            )
            with _NPY_HEADER_LOCK:
                shape, _fortran, dtype = read_header(f)
            data_bytes = dtype.itemsize * math.prod(shape)
            return (
                dtype.str == info.dtype
                and tuple(shape) == info.shape
                and f.tell() + data_bytes == info.size
            )
    except (OSError, ValueError, TypeError):
        return False
