"""The content-addressed perception store: tool results cached by what produced them.

A perception result (captions, action labels, embeddings...) is stored under a key that hashes
everything that changes it: the video's *bytes* (:func:`file_digest`, not its path), the tool name,
the tool version, the tool's parameters and :data:`STORE_FORMAT`. Re-running on the same video, even
a copy at another path, finds the result instead of recomputing it; changing any input misses.

Layout under ``root``::

    store.sqlite3                                       records (JSON value + meta), hash memo
    arrays/<key[:2]>/<key>.<write_id>__<name>.npy       numpy arrays of each record

Write protocol (:meth:`PerceptionStore.put`): every array goes to a temp file in its final
directory, then ``os.replace`` moves it into place (atomic on POSIX); only then is the record's row
inserted, in one short transaction. A reader therefore only sees a row whose arrays are already
complete. A crash or kill in between leaves at worst orphan array/temp files and no row; orphans are
harmless and :meth:`PerceptionStore.gc` removes them.

Array files are immutable: each put names its files with a fresh random ``write_id`` that the row
records, so a row always points at exactly the files written with it. Re-putting a key *replaces*
the record (``INSERT OR REPLACE``, last writer wins); a reader sees the old record or the new one,
never the value of one with the arrays of the other. The replaced record's files stay until
:meth:`PerceptionStore.gc`, so a reader that fetched the old record can still load its arrays.

Concurrency guarantees:

* Threads: each thread uses its own SQLite connection (created lazily; also re-created after fork).
  One :class:`PerceptionStore` may be shared by threads; it pickles as its root, so it can be passed
  to ``spawn`` workers.
* Processes: any number may read and write one store at once. SQLite in WAL mode serialises writers
  (busy timeout 30 s) while readers never block and read a consistent snapshot; transactions are a
  few statements long. No record is lost or corrupted by concurrent puts of distinct keys.
* Killed writers (SIGKILL, crash): WAL recovery on the next open restores the last committed state;
  every visible record is complete. ``synchronous=NORMAL``: a power loss may drop the last
  commits, never corrupt the DB. Array files are not fsynced; :meth:`PerceptionStore.get` checks
  each array's header and size and treats a missing or truncated one as a miss (drops the row), so
  lost array data costs a recompute, not a crash. Bit flips inside array data are not detected.
* Work claims (:meth:`PerceptionStore.claims`, :mod:`vidagent.store.claims`): the perception
  pipeline claims a missing key before computing it, so two runs over the same videos compute each
  result once; a claim of a dead process lapses and is taken over. :meth:`get_or_compute` does not
  claim: two workers computing the same missing key there both compute (the last put wins).
* Not guaranteed: :meth:`StoredResult.array` on a result whose record was since
  deleted, cleared or replaced and garbage-collected raises :class:`StoreError`.
  :meth:`PerceptionStore.gc` spares files younger than ``grace_s``, so it does not delete the arrays
  of a ``put`` that has written them but not yet inserted its row.
* WAL needs a local filesystem (shared memory); do not put the store on NFS.
"""

from __future__ import annotations

import json
import os
import re
import stat as stat_mod
import tempfile
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel

from vidagent.core.errors import StoreError, VideoNotFoundError
from vidagent.store.claims import CLAIM_TTL_S, Claims

# Re-exported: HASH_CHUNK is read by store_keys.file_digest, so patch it there, not here.
from vidagent.store.db import BUSY_TIMEOUT_S, DB_NAME, SCHEMA_VERSION, SQLiteStore
from vidagent.store.keys import (
    HASH_CHUNK,
    STORE_FORMAT,
    _canonical,
    _jsonable,
    file_digest,
    make_key,
)
from vidagent.store.maintenance import TMP_SUFFIX as _TMP_SUFFIX
from vidagent.store.maintenance import collect_garbage, store_stats
from vidagent.store.records import (
    ArrayInfo,
    Arrays,
    Computed,
    GcReport,
    JSONValue,
    StoredMeta,
    StoredResult,
    StoreStats,
    T,
    _array_ok,
)

if TYPE_CHECKING:
    from vidagent.core.settings import VidagentSettings

__all__ = [
    "BUSY_TIMEOUT_S",
    "DB_NAME",
    "HASH_CHUNK",
    "SCHEMA_VERSION",
    "STORE_FORMAT",
    "ArrayInfo",
    "Arrays",
    "Computed",
    "GcReport",
    "JSONValue",
    "PerceptionStore",
    "StoreStats",
    "StoredMeta",
    "StoredResult",
    "T",
    "file_digest",
    "make_key",
]

_ARRAY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class PerceptionStore(SQLiteStore):
    """Perception results cached by content hash under ``root`` (see the module docstring).

    Opening creates ``root`` if needed; a directory that cannot hold a store, a file that is not a
    store DB, or a DB from a newer vidagent raises :class:`StoreError` naming the path.
    """

    @classmethod
    def from_settings(cls, settings: VidagentSettings) -> PerceptionStore:
        """The store in ``settings.store_dir``."""
        return cls(settings.store_dir)

    def claims(self, *, ttl_s: float = CLAIM_TTL_S) -> Claims:
        """A new set of work claims in this store for this process (see :class:`Claims`)."""
        return Claims(self, ttl_s=ttl_s)

    def __getstate__(self) -> dict[str, str]:
        return {"root": str(self.root)}

    def __setstate__(self, state: dict[str, str]) -> None:
        self.__init__(state["root"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"PerceptionStore({str(self.root)!r})"

    # -- video hashes -----------------------------------------------------------------------------

    def video_hash(self, path: str | os.PathLike[str]) -> str:
        """:func:`file_digest` of ``path``, memoized by (realpath, size, mtime, ctime, inode).

        An unchanged file is not read again; any write (new size, mtime or ctime) re-hashes it. A
        file that keeps changing while it is hashed raises :class:`StoreError`.
        """
        real = os.path.realpath(path)

        def signature() -> tuple[int, int, int, int]:
            try:
                st = os.stat(real)
            except (FileNotFoundError, NotADirectoryError) as exc:
                raise VideoNotFoundError(path, "no such file") from exc
            if not stat_mod.S_ISREG(st.st_mode):
                raise VideoNotFoundError(path, "not a regular file")
            return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino

        sig = signature()
        with self._sql() as conn:
            row = conn.execute(
                "SELECT size, mtime_ns, ctime_ns, inode, digest FROM file_hashes "
                "WHERE realpath = ?",
                (real,),
            ).fetchone()
        if row is not None and tuple(row[:4]) == sig:
            return str(row[4])
        for _attempt in range(3):
            digest = file_digest(real)
            after = signature()
            if after == sig:
                with self._sql() as conn:
                    conn.execute(
                        "INSERT OR REPLACE INTO file_hashes VALUES (?, ?, ?, ?, ?, ?)",
                        (real, *sig, digest),
                    )
                return digest
            sig = after
        raise StoreError(f"{path}: the file kept changing while it was being hashed")

    # -- records ----------------------------------------------------------------------------------

    def _array_path(self, key: str, write_id: str, name: str) -> Path:
        return self.arrays_dir / key[:2] / f"{key}.{write_id}__{name}.npy"

    def _write_array(self, path: Path, arr: np.ndarray) -> ArrayInfo:
        """Write one array atomically: temp file in the final directory, then ``os.replace``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=_TMP_SUFFIX, dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, arr, allow_pickle=False)
                size = f.tell()
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return ArrayInfo(dtype=arr.dtype.str, shape=arr.shape, size=size)

    def _insert_record(self, meta: StoredMeta, value: JSONValue, write_id: str) -> None:
        arrays = {name: info.model_dump(mode="json") for name, info in meta.arrays.items()}
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    meta.key,
                    meta.video_hash,
                    meta.tool,
                    meta.version,
                    _canonical(meta.params),
                    _canonical(value),
                    _canonical(arrays),
                    meta.created_at.timestamp(),
                    write_id,
                ),
            )

    def put(
        self,
        key: str,
        value: JSONValue | BaseModel,
        arrays: Arrays | None = None,
        *,
        video_hash: str,
        tool: str,
        version: str,
        params: Mapping[str, Any] | BaseModel,
    ) -> StoredResult:
        """Store ``value`` (a JSON-able dict or a pydantic model) and ``arrays`` under ``key``.

        ``key`` must equal ``make_key(video_hash, tool, version, params)`` (checked: a mismatch
        would file the result under inputs that did not produce it). Arrays are written and moved
        into place before the row is inserted, so an interruption leaves no record. An existing
        record for ``key`` is replaced (last writer wins). Array names are file-name safe
        (``[A-Za-z0-9][A-Za-z0-9_.-]*``); object arrays are refused.
        """
        expected = make_key(video_hash, tool, version, params)
        if key != expected:
            raise ValueError(f"key {key!r} does not match make_key(...) = {expected!r}")
        val = _jsonable(value, "value")
        if not isinstance(val, dict):
            raise TypeError(f"value must be a dict or a pydantic model, got {type(value).__name__}")
        checked: dict[str, np.ndarray] = {}
        for name, arr in (arrays or {}).items():
            if not isinstance(name, str) or not _ARRAY_NAME.match(name):
                raise ValueError(f"array name {name!r} must match {_ARRAY_NAME.pattern}")
            if not isinstance(arr, np.ndarray):
                raise TypeError(f"array {name!r} is a {type(arr).__name__}, not a numpy array")
            if arr.dtype.hasobject:
                raise TypeError(f"array {name!r} has dtype {arr.dtype}, which cannot be stored")
            checked[name] = arr
        write_id = os.urandom(8).hex()
        paths = {name: self._array_path(key, write_id, name) for name in checked}
        infos = {name: self._write_array(paths[name], arr) for name, arr in checked.items()}
        meta = StoredMeta(
            key=key,
            video_hash=video_hash,
            tool=tool,
            version=version,
            params=_jsonable(params, "params"),
            created_at=datetime.now(timezone.utc),
            arrays=infos,
        )
        self._insert_record(meta, val, write_id)
        return StoredResult(val, meta, paths, cached=False)

    def _drop_stale(self, key: str, write_id: str) -> None:
        # Only the row we judged stale: a concurrent re-put has a new write_id and is kept.
        with self._sql() as conn:
            conn.execute("DELETE FROM results WHERE key = ? AND write_id = ?", (key, write_id))

    def get(self, key: str) -> StoredResult | None:
        """The record under ``key``, or None. A record whose array file is missing or truncated
        is a miss: its row is deleted so the result gets recomputed. Arrays load on access."""
        with self._sql() as conn:
            row = conn.execute(
                "SELECT video_hash, tool, version, params, value, arrays, created_at, write_id "
                "FROM results WHERE key = ?",
                (key,),
            ).fetchone()
        if row is None:
            return None
        video_hash, tool, version, params, value, arrays, created_at, write_id = row
        try:
            meta = StoredMeta(
                key=key,
                video_hash=video_hash,
                tool=tool,
                version=version,
                params=json.loads(params),
                created_at=datetime.fromtimestamp(created_at, timezone.utc),
                arrays=json.loads(arrays),
            )
            val = json.loads(value)
        except ValueError:  # a damaged row (pydantic's ValidationError is a ValueError too)
            self._drop_stale(key, write_id)
            return None
        paths = {name: self._array_path(key, write_id, name) for name in meta.arrays}
        if not isinstance(val, dict) or not all(
            _array_ok(path, meta.arrays[name]) for name, path in paths.items()
        ):
            self._drop_stale(key, write_id)
            return None
        return StoredResult(val, meta, paths, cached=True)

    def get_or_compute(
        self,
        video_hash: str,
        tool: str,
        version: str,
        params: Mapping[str, Any] | BaseModel,
        compute: Callable[[], tuple[JSONValue | BaseModel, Arrays | None]],
    ) -> StoredResult:
        """The stored result for these inputs (``cached=True``), else ``compute()``'s, stored.

        ``compute`` returns ``(value, arrays or None)`` (:class:`Computed` is such a tuple). Its
        exceptions propagate and nothing is stored.
        """
        key = make_key(video_hash, tool, version, params)
        hit = self.get(key)
        if hit is not None:
            return hit
        out = compute()
        if not isinstance(out, tuple) or len(out) != 2:
            raise TypeError(f"compute for {tool!r} must return (value, arrays), got {out!r:.100}")
        value, arrays = out
        return self.put(
            key, value, arrays, video_hash=video_hash, tool=tool, version=version, params=params
        )

    def has(self, key: str) -> bool:
        """Whether :meth:`get` would hit (the row exists and its arrays are intact)."""
        return self.get(key) is not None

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.has(key)

    def keys(self, tool: str | None = None) -> list[str]:
        """Keys of all records (of one tool), in no particular order."""
        sql, args = "SELECT key FROM results", []
        if tool is not None:
            sql, args = sql + " WHERE tool = ?", [tool]
        with self._sql() as conn:
            return [r[0] for r in conn.execute(sql, args)]

    def _delete_where(self, where: str, args: tuple[Any, ...]) -> int:
        """Delete matching rows, then their array files (rows first: no row outlives its files)."""
        with self._tx() as conn:
            rows = conn.execute(
                f"SELECT key, write_id, arrays FROM results WHERE {where}", args
            ).fetchall()
            conn.execute(f"DELETE FROM results WHERE {where}", args)
        for key, write_id, arrays in rows:
            for name in json.loads(arrays):
                self._array_path(key, write_id, name).unlink(missing_ok=True)
        return len(rows)

    def delete(self, key: str) -> bool:
        """Remove the record under ``key`` and its arrays; whether there was one."""
        return self._delete_where("key = ?", (key,)) > 0

    def clear(self, tool: str | None = None) -> int:
        """Remove every record (of ``tool``) and its arrays; how many. The hash memo is kept."""
        if tool is None:
            return self._delete_where("1", ())
        return self._delete_where("tool = ?", (tool,))

    # -- maintenance (in :mod:`vidagent.store.maintenance`)
    # -----------------------------------------

    def stats(self) -> StoreStats:
        """Records per tool and bytes on disk (orphan array files included until :meth:`gc`)."""
        return store_stats(self)

    def gc(self, grace_s: float = 600.0) -> GcReport:
        """Remove what no record needs: rows whose arrays are gone, array and temp files no row
        references (interrupted puts, replaced records), memoized hashes of vanished files.

        Files younger than ``grace_s`` seconds are kept: they may belong to a ``put`` in another
        process that has written its arrays but not yet inserted its row.
        """
        return collect_garbage(self, grace_s)
