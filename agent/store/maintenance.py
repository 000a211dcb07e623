"""Maintenance of a :class:`~vidagent.store.PerceptionStore`: disk usage and garbage collection.

:meth:`PerceptionStore.stats` and :meth:`PerceptionStore.gc` delegate here; the functions use the
store's connection helpers and file layout, so they live next to it rather than on the class.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from vidagent.store.records import ArrayInfo, GcReport, StoreStats, _array_ok


class Maintained(Protocol):
    """What maintenance needs of a store (:class:`~vidagent.store.PerceptionStore` has it);
    a protocol, so that this module does not import the store it maintains."""

    arrays_dir: Path
    db_path: Path

    def _sql(self) -> AbstractContextManager[sqlite3.Connection]: ...

    def _array_path(self, key: str, write_id: str, name: str) -> Path: ...

    def _drop_stale(self, key: str, write_id: str) -> None: ...


ARRAY_FILE = re.compile(r"^[0-9a-f]{64}\.[0-9a-f]{16}__.+\.npy$")
"""Names of the array files a store writes (``<key>.<write id>__<name>.npy``)."""
TMP_SUFFIX = ".tmp"


def array_files(arrays_dir: Path) -> Iterator[os.DirEntry[str]]:
    """Every plain file one level below ``arrays_dir`` (the store's array shards)."""
    for sub in os.scandir(arrays_dir):
        if sub.is_dir(follow_symlinks=False):
            yield from (e for e in os.scandir(sub.path) if e.is_file(follow_symlinks=False))


def store_stats(store: Maintained) -> StoreStats:
    """Records per tool and bytes on disk (orphan array files included until ``gc``)."""
    with store._sql() as conn:
        per_tool = dict(conn.execute("SELECT tool, COUNT(*) FROM results GROUP BY tool"))
    files = sizes = 0
    for entry in array_files(store.arrays_dir):
        files += 1
        sizes += entry.stat(follow_symlinks=False).st_size
    db_bytes = sum(
        p.stat().st_size
        for p in (store.db_path, Path(f"{store.db_path}-wal"), Path(f"{store.db_path}-shm"))
        if p.exists()
    )
    return StoreStats(
        records=sum(per_tool.values()),
        records_per_tool=per_tool,
        array_files=files,
        array_bytes=sizes,
        db_bytes=db_bytes,
    )


def collect_garbage(store: Maintained, grace_s: float = 600.0) -> GcReport:
    """Remove what no record needs: rows whose arrays are gone, array and temp files no row
    references (interrupted puts, replaced records), memoized hashes of vanished files, expired
    work claims.

    Files younger than ``grace_s`` seconds are kept: they may belong to a ``put`` in another
    process that has written its arrays but not yet inserted its row.
    """
    with store._sql() as conn:
        rows = conn.execute("SELECT key, arrays, write_id FROM results").fetchall()
    referenced: set[str] = set()
    stale = 0
    for key, arrays, write_id in rows:
        infos = {
            store._array_path(key, write_id, name): ArrayInfo.model_validate(info)
            for name, info in json.loads(arrays).items()
        }
        if all(_array_ok(path, info) for path, info in infos.items()):
            referenced.update(path.name for path in infos)
        else:
            store._drop_stale(key, write_id)
            stale += 1
    cutoff = time.time() - grace_s
    removed = freed = 0
    for entry in array_files(store.arrays_dir):
        name = entry.name
        if name.endswith(TMP_SUFFIX) and name.startswith("."):
            orphan = True
        elif ARRAY_FILE.match(name):
            orphan = name not in referenced
        else:
            continue  # not ours
        st = entry.stat(follow_symlinks=False)
        if orphan and st.st_mtime < cutoff:
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                continue
            removed += 1
            freed += st.st_size
    with store._sql() as conn:
        memo = [r[0] for r in conn.execute("SELECT realpath FROM file_hashes")]
        gone = [(p,) for p in memo if not os.path.exists(p)]
        conn.executemany("DELETE FROM file_hashes WHERE realpath = ?", gone)
        conn.execute("DELETE FROM claims WHERE expires_at < ?", (time.time(),))  # lapsed claims
    return GcReport(
        files_removed=removed,
        bytes_freed=freed,
        stale_records_removed=stale,
        file_hashes_removed=len(gone),
    )
