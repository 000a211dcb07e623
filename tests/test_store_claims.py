"""Work claims in the perception store (agent/store/claims.py): exclusive until released, taken
over at once when the owner process is gone, expiring without a heartbeat, kept alive by one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from vidagent.store.claims import Claims, process_alive
from vidagent.store.perception import PerceptionStore

KEY = "k" * 64


def test_a_claim_is_exclusive_until_released(tmp_path: Path) -> None:
    store = PerceptionStore(tmp_path)
    with store.claims() as a, store.claims() as b:
        assert a.acquire(KEY) and a.acquire(KEY)  # ours already: still ours
        assert not b.acquire(KEY)
        holder = b.live_holders([KEY, "other"])
        assert list(holder) == [KEY] and holder[KEY].owner == a.owner
        assert holder[KEY].pid == os.getpid()
        assert a.live_holders([KEY]) == {}  # our own claims are not "others'"
        a.release(KEY)
        assert b.acquire(KEY) and not a.acquire(KEY)
        assert b.held == {KEY}
    with store.claims() as c:  # leaving the block released everything
        assert c.acquire(KEY)


_HOLDER = """
import sys, time
from vidagent.store.perception import PerceptionStore
claims = PerceptionStore(sys.argv[1]).claims()
assert claims.acquire(sys.argv[2])
print("held", flush=True)
time.sleep(600)
"""


def test_the_claim_of_a_killed_process_is_taken_over_at_once(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path), KEY], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        claims = PerceptionStore(tmp_path).claims()  # a 60 s lifetime: no waiting for expiry
        assert not claims.acquire(KEY)
        assert claims.live_holders([KEY])[KEY].pid == proc.pid
        os.kill(proc.pid, signal.SIGKILL)
        while process_alive(proc.pid):  # a zombie until reaped: dead for claims already
            time.sleep(0.01)
        assert claims.live_holders([KEY]) == {}
        assert claims.acquire(KEY)
        proc.wait(timeout=10)
        claims.close()
    finally:
        proc.kill()
        proc.wait()


def test_a_claim_without_heartbeat_expires_and_one_with_it_does_not(tmp_path: Path) -> None:
    store = PerceptionStore(tmp_path)
    # an owner on another machine (no pid to check there): only its expiry counts
    with store._tx() as conn:
        conn.execute(
            "INSERT INTO claims VALUES (?, ?, ?, ?, ?)",
            (KEY, "elsewhere:1:x", "elsewhere", 1, time.time() + 0.3),
        )
    mine = Claims(store, ttl_s=0.4)
    assert not mine.acquire(KEY)
    time.sleep(0.4)
    assert mine.acquire(KEY)  # expired: taken over

    other = Claims(store, ttl_s=0.4)
    time.sleep(1.2)  # three lifetimes: the heartbeat (every 0.1 s) kept it
    assert not other.acquire(KEY)
    mine.close()
    assert other.acquire(KEY)
    other.close()


def test_gc_drops_expired_claims(tmp_path: Path) -> None:
    store = PerceptionStore(tmp_path)
    with store._tx() as conn:
        conn.executemany(
            "INSERT INTO claims VALUES (?, ?, ?, ?, ?)",
            [("old", "h:1:x", "h", 1, time.time() - 5), ("new", "h:1:x", "h", 1, time.time() + 60)],
        )
    store.gc()
    with store._sql() as conn:
        assert [r[0] for r in conn.execute("SELECT key FROM claims")] == ["new"]
