"""Work claims in the perception store: of several processes missing one result, one computes it.

Two ``vidagent perceive`` runs over the same videos would otherwise both compute every result (the
store is content-addressed, so nothing breaks, but all the model work is done twice). Before it
computes a missing result, the pipeline claims its key: a row ``(key, owner, host, pid,
expires_at)`` in the store DB's ``claims`` table, written in one ``BEGIN IMMEDIATE`` transaction,
so of two processes that try at once exactly one gets it. The others wait for the result (they
read it from the store when it is there) and take the claim over when it lapses.

A claim lapses when

* its owner releases it: the result is stored, the video failed, the run ended;
* its owner's process is gone: same host and the pid is not running (or is a zombie). This is
  seen at once, so the work of a SIGKILLed run is taken over at the next poll;
* its heartbeat stops: a thread of the owner refreshes ``expires_at`` every ``ttl_s / 4``, and a
  claim not refreshed for ``ttl_s`` expires (an owner on another machine that died, or a frozen
  one). Clocks of machines sharing a store must agree to well within ``ttl_s``.

Owners are ``host:pid:random``, so a new process that reuses a pid is not its predecessor; a pid
reused on the same host keeps a dead owner's claim alive only until its heartbeat expires. Claims
only save work: a result computed twice (a claim that lapsed under a slow owner) is still correct,
the last put wins as before.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from vidagent.core.errors import StoreError

log = logging.getLogger(__name__)

CLAIM_TTL_S = 60.0
"""Seconds a claim lives without a heartbeat (the owner refreshes it 4 times as often)."""
_IN_BATCH = 500
"""Keys per ``IN (...)`` query (SQLite's bound-parameter limit is far above it)."""


class ClaimDB(Protocol):
    """What claims need of a store (:class:`~vidagent.store.PerceptionStore` has it)."""

    def _sql(self) -> AbstractContextManager[sqlite3.Connection]: ...

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]: ...


@dataclass(frozen=True)
class ClaimHolder:
    """Who holds a claim, and until when (``time.time()`` seconds) unless refreshed."""

    key: str
    owner: str
    host: str
    pid: int
    expires_at: float


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs on this host (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):  # no /proc (macOS): trust kill()
        return True
    return state not in ("Z", "X")


class Claims:
    """The claims one process holds in a store, kept alive by a heartbeat thread.

    :meth:`acquire` a key before computing it, :meth:`release` it once the result is stored (or
    the work failed); :meth:`live_holders` says which keys others are working on. :meth:`close`
    (or leaving the ``with`` block) releases everything still held and stops the heartbeat.
    """

    def __init__(self, store: ClaimDB, *, ttl_s: float = CLAIM_TTL_S) -> None:
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be > 0, got {ttl_s}")
        self.store = store
        self.ttl_s = ttl_s
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.owner = f"{self.host}:{self.pid}:{os.urandom(6).hex()}"
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    # -- state of other claims -------------------------------------------------------------------

    def _live(self, holder: ClaimHolder, now: float) -> bool:
        if holder.owner == self.owner or holder.expires_at <= now:
            return False
        return holder.host != self.host or process_alive(holder.pid)

    def live_holders(self, keys: Iterable[str]) -> dict[str, ClaimHolder]:
        """The keys among ``keys`` that another live owner holds, with their holders."""
        wanted = list(dict.fromkeys(keys))
        now = time.time()
        out: dict[str, ClaimHolder] = {}
        with self.store._sql() as conn:
            for i in range(0, len(wanted), _IN_BATCH):
                part = wanted[i : i + _IN_BATCH]
                rows = conn.execute(
                    "SELECT key, owner, host, pid, expires_at FROM claims "
                    f"WHERE key IN ({','.join('?' * len(part))})",
                    part,
                ).fetchall()
                for row in rows:
                    holder = ClaimHolder(*row)
                    if self._live(holder, now):
                        out[holder.key] = holder
        return out

    # -- our claims ------------------------------------------------------------------------------

    def acquire(self, key: str) -> bool:
        """Claim ``key``: True if it is now ours (it was free, lapsed, or ours already)."""
        now = time.time()
        with self.store._tx() as conn:
            row = conn.execute(
                "SELECT key, owner, host, pid, expires_at FROM claims WHERE key = ?", (key,)
            ).fetchone()
            if row is not None and self._live(ClaimHolder(*row), now):
                return False
            if row is not None and row[1] != self.owner:
                log.info("taking over the lapsed claim on %s of %s", key[:12], row[1])
            conn.execute(
                "INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?, ?)",
                (key, self.owner, self.host, self.pid, now + self.ttl_s),
            )
        with self._lock:
            self._held.add(key)
        self._start_heartbeat()
        return True

    def release(self, keys: Sequence[str] | str) -> None:
        """Give up ``keys`` (only rows we own are removed; unknown keys are ignored)."""
        names = [keys] if isinstance(keys, str) else list(keys)
        with self._lock:
            mine = [k for k in names if k in self._held]
            self._held.difference_update(mine)
        if mine:
            with self.store._tx() as conn:
                conn.executemany(
                    "DELETE FROM claims WHERE key = ? AND owner = ?",
                    [(k, self.owner) for k in mine],
                )

    @property
    def held(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._held)

    def refresh(self) -> None:
        """Push the expiry of every claim we hold ``ttl_s`` into the future (the heartbeat)."""
        with self.store._tx() as conn:
            conn.execute(
                "UPDATE claims SET expires_at = ? WHERE owner = ?",
                (time.time() + self.ttl_s, self.owner),
            )

    def _start_heartbeat(self) -> None:
        with self._lock:
            if self._beat is not None or self._stop.is_set():
                return
            self._beat = threading.Thread(
                target=self._heartbeat, name="vidagent-claims", daemon=True
            )
            self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.ttl_s / 4):
            try:
                self.refresh()
            except StoreError as exc:  # a busy or vanished DB: try again at the next beat
                log.warning("claims heartbeat failed: %s", exc)

    def close(self) -> None:
        """Release every claim still held and stop the heartbeat."""
        self._stop.set()
        beat = self._beat
        if beat is not None:
            beat.join(timeout=10)
        with self._lock:
            held, self._held = list(self._held), set()
        if held:
            with self.store._tx() as conn:
                conn.execute("DELETE FROM claims WHERE owner = ?", (self.owner,))

    def __enter__(self) -> Claims:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
