"""The SQLite side of the perception store: schema, per-thread connections, short transactions.

:class:`SQLiteStore` is the base of :class:`vidagent.store.PerceptionStore` (whose docstring states
the concurrency guarantees): one WAL-mode DB at ``<root>/store.sqlite3`` and the ``arrays``
directory beside it, one connection per thread (re-created after fork), SQLite errors as
:class:`~vidagent.core.errors.StoreError` naming the DB.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vidagent.core.errors import StoreError

SCHEMA_VERSION = 1
"""Version of the SQLite schema; a DB written by a newer vidagent is refused. (The ``claims``
table, :mod:`vidagent.store.claims`, was added without a bump: it is created on open, and older
versions ignore it.)"""
DB_NAME = "store.sqlite3"
BUSY_TIMEOUT_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    video_hash TEXT NOT NULL,
    tool TEXT NOT NULL,
    version TEXT NOT NULL,
    params TEXT NOT NULL,
    value TEXT NOT NULL,
    arrays TEXT NOT NULL,
    created_at REAL NOT NULL,
    write_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS results_tool ON results (tool);
CREATE INDEX IF NOT EXISTS results_video ON results (video_hash);
CREATE TABLE IF NOT EXISTS file_hashes (
    realpath TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    digest TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS claims_owner ON claims (owner);
"""


class SQLiteStore:
    """A store directory with its SQLite DB; opening creates it and checks its schema version."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.db_path = self.root / DB_NAME
        self.arrays_dir = self.root / "arrays"
        self._local = threading.local()
        self._conns: list[tuple[int, sqlite3.Connection]] = []
        self._conns_lock = threading.Lock()
        self._open()

    # -- connections ------------------------------------------------------------------------------

    def _open(self) -> None:
        try:
            self.arrays_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.root}: cannot create the store directory: {exc}") from exc
        with self._sql() as conn:
            deadline = time.monotonic() + BUSY_TIMEOUT_S
            while True:  # switching to WAL needs a moment of exclusive access
                try:
                    conn.execute("PRAGMA journal_mode=WAL").fetchone()
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        with self._tx() as conn:
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if tables and "schema_version" not in tables:
                raise StoreError(f"{self.db_path}: an SQLite DB that is not a vidagent store")
            found = None
            if tables:
                found = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
            if found is not None and found > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.db_path}: written by a newer vidagent (store schema {found}, this "
                    f"version reads {SCHEMA_VERSION}); upgrade vidagent or use another store"
                )
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            if found is None:
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection (a new one after fork: SQLite handles must not cross it)."""
        local = self._local
        pid = os.getpid()
        if getattr(local, "conn", None) is None or local.pid != pid:
            conn = sqlite3.connect(
                self.db_path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA synchronous=NORMAL")
            local.conn, local.pid = conn, pid
            with self._conns_lock:
                self._conns.append((pid, conn))
        conn_: sqlite3.Connection = local.conn
        return conn_

    @contextmanager
    def _sql(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection, with SQLite errors turned into :class:`StoreError`."""
        try:
            yield self._conn()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.db_path}: {exc}") from exc

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction (``BEGIN IMMEDIATE``: waits for other writers up front)."""
        with self._sql() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close the connections this process opened; the store reopens on the next call."""
        pid = os.getpid()
        with self._conns_lock:
            mine = [c for p, c in self._conns if p == pid]
            self._conns = [(p, c) for p, c in self._conns if p != pid]
        for conn in mine:
            conn.close()
        self._local = threading.local()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
