"""The perception store: keys, file hashes, round trips, crash safety and concurrent processes.

Everything runs on real files in ``tmp_path`` with real SQLite and numpy; the crash tests kill real
child processes with SIGKILL and the concurrency test runs real ``spawn`` processes.
"""

from __future__ import annotations

import hashlib
import math
import multiprocessing as mp
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import vidagent.store.perception as store_mod
from vidagent.core.errors import StoreError, VideoNotFoundError
from vidagent.core.records import Caption
from vidagent.store.perception import (
    Computed,
    PerceptionStore,
    StoredResult,
    file_digest,
    make_key,
)

VH = "0123456789abcdef0123456789abcdef"
SPAWN = mp.get_context("spawn")


def put_record(store: PerceptionStore, video: str, i: int, n: int = 64, tool: str = "t") -> str:
    """Put record ``i``: its value describes its arrays, so a torn record is detectable."""
    params = {"i": i}
    data = np.full(n, i, dtype=np.int64)
    key = make_key(video, tool, "1", params)
    value = {"i": i, "n": n, "sum": int(data.sum())}
    arrays = {"data": data, "idx": np.arange(i % 7 + 1, dtype=np.int32)}
    store.put(key, value, arrays, video_hash=video, tool=tool, version="1", params=params)
    return key


def record_problem(store: PerceptionStore, key: str) -> str | None:
    """Why the record under ``key`` is not complete and consistent, or None if it is."""
    res = store.get(key)
    if res is None:
        return f"{key}: listed but get() misses"
    v = res.value
    data, idx = res.array("data"), res.array("idx")
    if data.shape != (v["n"],) or int(data.sum()) != v["sum"] or not (data == v["i"]).all():
        return f"{key}: data does not match value {v}"
    if idx.tolist() != list(range(v["i"] % 7 + 1)):
        return f"{key}: idx does not match value {v}"
    return None


def all_problems(store: PerceptionStore, keys: list[str]) -> list[str]:
    return [p for p in (record_problem(store, k) for k in keys) if p is not None]


# -- keys -----------------------------------------------------------------------------------------


def test_make_key_is_stable_and_ignores_param_order() -> None:
    params = {"fps": 2, "model": "m", "prompt": {"style": "short"}}
    key = make_key("0" * 32, "captioner", "1.0", params)
    # Golden value: a change here silently invalidates every user's cache; bump STORE_FORMAT.
    assert key == "4d60ffc4030b02f105fc48036848d9c82e0976418b0a837440a12768c4cd8006"
    reordered = {"prompt": {"style": "short"}, "model": "m", "fps": 2}
    assert make_key("0" * 32, "captioner", "1.0", reordered) == key


def test_make_key_changes_with_every_input() -> None:
    base: dict[str, Any] = {"fps": 2, "model": "m", "opts": {"k": [1, 2]}}
    keys = [
        make_key(VH, "captioner", "1", base),
        make_key(VH[::-1], "captioner", "1", base),
        make_key(VH, "actions", "1", base),
        make_key(VH, "captioner", "2", base),
        make_key(VH, "captioner", "1", {**base, "fps": 3}),
        make_key(VH, "captioner", "1", {**base, "model": "n"}),
        make_key(VH, "captioner", "1", {**base, "opts": {"k": [2, 1]}}),
        make_key(VH, "captioner", "1", {**base, "extra": None}),
        make_key(VH, "captioner", "1", {"fps": 2, "model": "m"}),
    ]
    assert len(set(keys)) == len(keys)
    assert make_key(VH, "captioner", "1", {**base, "fps": 3}) == keys[4]  # deterministic


def test_make_key_accepts_pydantic_models_and_numpy_scalars() -> None:
    cap = Caption(text="a dog", model="m")
    assert make_key(VH, "t", "1", {"c": cap}) == make_key(VH, "t", "1", {"c": cap.model_dump()})
    assert make_key(VH, "t", "1", cap) == make_key(VH, "t", "1", {"text": "a dog", "model": "m"})
    assert make_key(VH, "t", "1", {"x": np.float32(0.5), "t": (1, 2)}) == make_key(
        VH, "t", "1", {"x": 0.5, "t": [1, 2]}
    )


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"fn": object()}, "params['fn']"),
        ({"outer": {"path": Path("/x")}}, "params['outer']['path']"),
        ({"fps": math.nan}, "params['fps']"),
        ({"s": {1, 2}}, "params['s']"),
        ({"lst": [1, {"deep": b"x"}]}, "params['lst'][1]['deep']"),
    ],
)
def test_make_key_rejects_non_json_params_naming_them(params: dict[str, Any], named: str) -> None:
    with pytest.raises(TypeError, match=named.replace("[", r"\[")):
        make_key(VH, "t", "1", params)


# -- file hashes ----------------------------------------------------------------------------------


def test_file_digest_hashes_bytes_not_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = os.urandom(100_003)
    a, b, c = tmp_path / "a.mp4", tmp_path / "sub" / "b.mp4", tmp_path / "c.mp4"
    b.parent.mkdir()
    a.write_bytes(payload)
    b.write_bytes(payload)
    c.write_bytes(payload[:-1] + bytes([payload[-1] ^ 1]))
    expected = hashlib.blake2b(payload, digest_size=16).hexdigest()
    assert file_digest(a) == file_digest(b) == expected
    assert file_digest(c) != expected
    import vidagent.store.keys as store_keys

    monkeypatch.setattr(store_keys, "HASH_CHUNK", 4096)  # many chunks, last one partial
    assert file_digest(a) == expected
    store = PerceptionStore(tmp_path / "store")
    assert store.video_hash(a) == store.video_hash(b) == expected
    with pytest.raises(VideoNotFoundError, match=r"nope\.mp4"):
        store.video_hash(tmp_path / "nope.mp4")
    with pytest.raises(VideoNotFoundError):
        file_digest(tmp_path)


def test_video_hash_is_memoized_until_the_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_digest = store_mod.file_digest

    def counting(path: str | os.PathLike[str]) -> str:
        calls.append(os.fspath(path))
        return real_digest(path)

    monkeypatch.setattr(store_mod, "file_digest", counting)
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x" * 5000)
    store = PerceptionStore(tmp_path / "store")
    first = store.video_hash(video)
    assert store.video_hash(video) == first
    assert len(calls) == 1
    assert PerceptionStore(tmp_path / "store").video_hash(video) == first  # memo is on disk
    link = tmp_path / "link.mp4"
    link.symlink_to(video)
    assert store.video_hash(link) == first  # same realpath: still the memo
    assert len(calls) == 1

    st = video.stat()
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))  # touch
    assert store.video_hash(video) == first
    assert len(calls) == 2

    # Same size, mtime put back: only ctime tells the content changed.
    st = video.stat()
    video.write_bytes(b"y" * 5000)
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns))
    changed = store.video_hash(video)
    assert changed == real_digest(video) != first
    assert len(calls) == 3


# -- records --------------------------------------------------------------------------------------


def test_put_get_round_trip_preserves_json_and_arrays(tmp_path: Path) -> None:
    store = PerceptionStore(tmp_path)
    params = {"fps": 1.5, "model": "m"}
    key = make_key(VH, "embedder", "3", params)
    value = {"captions": ["a", "b"], "nested": {"score": 0.25, "ok": True, "none": None}}
    arrays = {
        "emb": np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32),
        "ids": np.arange(24, dtype=np.int64).reshape(2, 3, 4),
        "frame": np.full((4, 6, 3), 200, dtype=np.uint8),
        "mask": np.array([True, False, True]),
        "empty": np.zeros((0, 5), dtype=np.float16),
        "fortran": np.asfortranarray(np.arange(6, dtype=">i4").reshape(2, 3)),
    }
    put = store.put(key, value, arrays, video_hash=VH, tool="embedder", version="3", params=params)
    assert not put.cached
    assert store.get(make_key(VH, "embedder", "4", params)) is None

    got = store.get(key)
    assert got is not None and got.cached
    assert got.value == value
    assert (got.meta.tool, got.meta.version, got.meta.video_hash) == ("embedder", "3", VH)
    assert got.meta.params == params and got.meta.key == key
    assert abs(got.meta.created_at.timestamp() - time.time()) < 60
    assert sorted(got.array_names) == sorted(arrays)
    for name, arr in arrays.items():
        for mmap in (False, True):
            loaded = got.array(name, mmap=mmap)
            assert loaded.dtype == arr.dtype and loaded.shape == arr.shape, name
            np.testing.assert_array_equal(loaded, arr)
    assert isinstance(got.array("emb", mmap=True), np.memmap)
    assert not isinstance(got.array("emb"), np.memmap)
    with pytest.raises(KeyError):
        got.array("nope")
    (on_disk,) = (tmp_path / "arrays" / key[:2]).glob(f"{key}.*__emb.npy")
    np.testing.assert_array_equal(np.load(on_disk), arrays["emb"])


def test_put_accepts_a_pydantic_value(tmp_path: Path) -> None:
    store = PerceptionStore(tmp_path)
    key = make_key(VH, "captioner", "1", {})
    cap = Caption(text="a cat", model="m")
    store.put(key, cap, video_hash=VH, tool="captioner", version="1", params={})
    got = store.get(key)
    assert got is not None and got.value == {"text": "a cat", "model": "m"}
    assert got.value_as(Caption) == cap and got.array_names == ()


def test_put_rejects_bad_input_before_writing_anything(tmp_path: Path) -> None:
    store = PerceptionStore(tmp_path)
    key = make_key(VH, "t", "1", {})
    meta: dict[str, Any] = {"video_hash": VH, "tool": "t", "version": "1", "params": {}}
    ok = np.zeros(3)
    with pytest.raises(ValueError, match="does not match"):
        store.put(key, {}, {"a": ok}, **{**meta, "version": "2"})
    with pytest.raises(ValueError, match=re.escape("array name '../x'")):
        store.put(key, {}, {"a": ok, "../x": ok}, **meta)
    with pytest.raises(TypeError, match="'o'"):
        store.put(key, {}, {"a": ok, "o": np.array([object()])}, **meta)
    with pytest.raises(TypeError, match="list"):
        store.put(key, {}, {"a": ok, "l": [1, 2]}, **meta)  # type: ignore[dict-item]
    with pytest.raises(TypeError, match=r"value\['f'\]"):
        store.put(key, {"f": object()}, {"a": ok}, **meta)
    assert store.keys() == [] and store.stats().array_files == 0


def test_get_or_compute_computes_once(tmp_path: Path) -> None:
    store = PerceptionStore(tmp_path)
    calls = []

    def compute() -> Computed:
        calls.append(1)
        return Computed({"label": "open door"}, {"logits": np.arange(4.0)})

    first = store.get_or_compute(VH, "actions", "1", {"k": 5}, compute)
    second = store.get_or_compute(VH, "actions", "1", {"k": 5}, compute)
    assert (first.cached, second.cached, len(calls)) == (False, True, 1)
    assert second.value == {"label": "open door"}
    np.testing.assert_array_equal(second.array("logits"), np.arange(4.0))
    store.get_or_compute(VH, "actions", "1", {"k": 6}, compute)
    assert len(calls) == 2  # another param: another computation
    # A plain tuple and no arrays work too; a failing compute stores nothing.
    assert store.get_or_compute(VH, "x", "1", {}, lambda: ({"a": 1}, None)).value == {"a": 1}

    def boom() -> Computed:
        raise RuntimeError("model crashed")

    with pytest.raises(RuntimeError, match="model crashed"):
        store.get_or_compute(VH, "y", "1", {}, boom)
    with pytest.raises(TypeError, match="must return"):
        store.get_or_compute(VH, "y", "1", {}, lambda: {"a": 1})  # type: ignore[arg-type,return-value]
    assert store.keys("y") == []


def test_failure_after_the_arrays_before_the_row_leaves_no_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = PerceptionStore(tmp_path)
    key = make_key(VH, "t", "1", {"i": 1})

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt  # e.g. Ctrl-C between the array writes and the insert

    monkeypatch.setattr(PerceptionStore, "_insert_record", interrupted)
    with pytest.raises(KeyboardInterrupt):
        put_record(store, VH, 1)
    assert store.keys() == [] and store.get(key) is None and not store.has(key)
    assert store.stats().array_files == 2  # the arrays were written: orphans
    monkeypatch.undo()

    assert put_record(store, VH, 1) == key
    assert record_problem(store, key) is None
    assert store.gc(grace_s=0).files_removed == 2  # the interrupted put's arrays
    assert record_problem(store, key) is None and store.stats().array_files == 2


def test_failure_while_writing_an_array_leaves_no_record_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = PerceptionStore(tmp_path)
    real_save = np.save
    saved: list[str] = []

    def flaky_save(f: Any, arr: np.ndarray, **kwargs: Any) -> None:
        saved.append(f.name)
        if len(saved) == 2:
            f.write(b"\x93NUMPY partial")
            raise OSError("disk full")
        real_save(f, arr, **kwargs)

    monkeypatch.setattr(np, "save", flaky_save)
    with pytest.raises(OSError, match="disk full"):
        put_record(store, VH, 3)
    monkeypatch.undo()
    assert store.keys() == []
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "arrays").rglob("*"))
    assert store.gc(grace_s=0).files_removed == 1  # the first array, moved into place
    assert store.stats().array_files == 0
    assert record_problem(store, put_record(store, VH, 3)) is None


def test_re_put_replaces_the_record(tmp_path: Path) -> None:
    store = PerceptionStore(tmp_path)
    key = make_key(VH, "t", "1", {})
    meta: dict[str, Any] = {"video_hash": VH, "tool": "t", "version": "1", "params": {}}
    store.put(key, {"v": 1}, {"a": np.zeros(3), "b": np.ones(2)}, **meta)
    store.put(key, {"v": 2}, {"a": np.arange(5)}, **meta)
    got = store.get(key)
    assert got is not None and got.value == {"v": 2} and got.array_names == ("a",)
    np.testing.assert_array_equal(got.array("a"), np.arange(5))
    assert store.stats().records == 1 and store.stats().array_files == 3
    assert store.gc(grace_s=0).files_removed == 2  # the first put's arrays
    got = store.get(key)
    assert got is not None and got.array("a").tolist() == list(range(5))


@pytest.mark.parametrize("damage", ["delete", "truncate", "garbage", "other_shape"])
def test_a_record_with_a_damaged_array_is_a_miss(tmp_path: Path, damage: str) -> None:
    store = PerceptionStore(tmp_path)
    key = put_record(store, VH, 5, n=1000)
    (path,) = (tmp_path / "arrays" / key[:2]).glob(f"{key}.*__data.npy")
    if damage == "delete":
        path.unlink()
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:-8])
    elif damage == "garbage":
        path.write_bytes(os.urandom(path.stat().st_size))
    else:
        np.save(path, np.zeros(1000, dtype=np.float64).reshape(10, 100))  # same size, other shape
    assert store.get(key) is None
    assert store.keys() == []  # the stale row is gone
    calls = []
    res = store.get_or_compute(
        VH, "t", "1", {"i": 5}, lambda: calls.append(1) or ({"x": 1}, {"data": np.zeros(2)})
    )
    assert calls == [1] and not res.cached
    assert store.get(key) is not None


def test_opening_refuses_what_is_not_a_compatible_store(tmp_path: Path) -> None:
    store = PerceptionStore(tmp_path / "s")
    put_record(store, VH, 1)
    store.close()
    db = tmp_path / "s" / "store.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE schema_version SET version = 99")
    conn.close()
    with pytest.raises(StoreError, match=r"store\.sqlite3.*newer.*schema 99"):
        PerceptionStore(tmp_path / "s")

    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "store.sqlite3").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=r"store\.sqlite3"):
        PerceptionStore(tmp_path / "g")

    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="file"):
        PerceptionStore(tmp_path / "file")

    (tmp_path / "o").mkdir()
    with sqlite3.connect(tmp_path / "o" / "store.sqlite3") as conn:
        conn.execute("CREATE TABLE people (name TEXT)")
    conn.close()
    with pytest.raises(StoreError, match="not a vidagent store"):
        PerceptionStore(tmp_path / "o")


def test_the_db_is_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    store = PerceptionStore(tmp_path)
    with sqlite3.connect(tmp_path / "store.sqlite3") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
    conn.close()
    assert store._conn().execute("PRAGMA busy_timeout").fetchone()[0] >= 10_000


def test_stats_delete_and_clear(tmp_path: Path) -> None:
    store = PerceptionStore(tmp_path)
    keys_a = [put_record(store, VH, i, tool="a") for i in range(3)]
    keys_b = [put_record(store, VH, i, tool="b") for i in range(2)]
    stats = store.stats()
    assert stats.records == 5 and stats.records_per_tool == {"a": 3, "b": 2}
    files = [p for p in (tmp_path / "arrays").rglob("*.npy")]
    assert stats.array_files == len(files) == 10
    assert stats.array_bytes == sum(p.stat().st_size for p in files)
    assert stats.db_bytes > 0 and stats.total_bytes == stats.array_bytes + stats.db_bytes

    assert store.delete(keys_b[0]) and not store.delete(keys_b[0])
    assert store.get(keys_b[0]) is None and store.get(keys_b[1]) is not None
    assert store.clear("a") == 3
    assert all(store.get(k) is None for k in keys_a)
    stats = store.stats()
    assert stats.records_per_tool == {"b": 1} and stats.array_files == 2
    assert store.clear() == 1 and store.stats().array_files == 0 and store.keys() == []


def test_gc_removes_only_what_no_record_needs(tmp_path: Path) -> None:
    store = PerceptionStore(tmp_path)
    kept = put_record(store, VH, 1)
    stale = put_record(store, VH, 2)
    (stale_idx,) = (tmp_path / "arrays" / stale[:2]).glob(f"{stale}.*__idx.npy")
    stale_idx.unlink()
    orphan_key = "f" * 64
    (tmp_path / "arrays" / "ff").mkdir(exist_ok=True)
    orphan = tmp_path / "arrays" / "ff" / f"{orphan_key}.{'0' * 16}__data.npy"
    np.save(orphan, np.zeros(10))
    tmp_file = tmp_path / "arrays" / "ff" / f".{orphan_key}.{'1' * 16}__x.abc.tmp"
    tmp_file.write_bytes(b"half")
    foreign = tmp_path / "arrays" / "ff" / "README"
    foreign.write_text("not ours")
    video = tmp_path / "v.mp4"
    video.write_bytes(b"v")
    store.video_hash(video)
    video.unlink()

    young = store.gc()  # default grace: fresh orphans may belong to a put in progress
    assert young.files_removed == 0 and young.stale_records_removed == 1
    assert orphan.exists() and tmp_file.exists() and young.file_hashes_removed == 1

    report = store.gc(grace_s=0)
    # The stale record's remaining "data" array, the orphan and the temp file.
    assert report.files_removed == 3 and report.bytes_freed > 0
    assert not orphan.exists() and not tmp_file.exists() and foreign.exists()
    assert store.keys() == [kept] and record_problem(store, kept) is None
    assert store.stats().array_files == 3  # kept's two arrays + README


def test_threads_share_one_store(tmp_path: Path) -> None:
    store = PerceptionStore(tmp_path)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(40):
                key = put_record(store, f"video{t}", i)
                if problem := record_problem(store, key):  # also loads arrays in parallel
                    raise AssertionError(problem)
                store.get(make_key(f"video{(t + 1) % 4}", "t", "1", {"i": i}))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    keys = store.keys()
    assert len(keys) == 160
    assert all_problems(store, keys) == []
    store.close()


# -- several processes ----------------------------------------------------------------------------


def _writer(store: PerceptionStore, video: str, count: int, start: Any) -> None:
    start.wait()
    for i in range(count):
        put_record(store, video, i, n=2048)


def _reader(root: str, expected: int, start: Any, out: Any) -> None:
    store = PerceptionStore(root)
    start.wait()
    seen: set[str] = set()
    problems: list[str] = []
    partial_views = 0
    deadline = time.monotonic() + 60
    while len(seen) < expected and time.monotonic() < deadline:
        keys = store.keys()
        partial_views += 0 < len(keys) < expected
        for key in keys:
            if key not in seen:
                seen.add(key)
                if problem := record_problem(store, key):
                    problems.append(problem)
    out.put({"seen": len(seen), "problems": problems, "partial_views": partial_views})


def test_two_writer_processes_and_a_reader(tmp_path: Path) -> None:
    store = PerceptionStore(tmp_path)
    start, out = SPAWN.Barrier(3), SPAWN.Queue()
    procs = [
        SPAWN.Process(target=_writer, args=(store, "video-a", 200, start)),
        SPAWN.Process(target=_writer, args=(store, "video-b", 200, start)),
        SPAWN.Process(target=_reader, args=(str(tmp_path), 400, start, out)),
    ]
    for p in procs:
        p.start()
    result = out.get(timeout=90)
    for p in procs:
        p.join(timeout=30)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert result["problems"] == [] and result["seen"] == 400
    assert result["partial_views"] > 0  # the reader really read while the writers wrote
    keys = store.keys()
    assert len(keys) == 400 and store.stats().records_per_tool == {"t": 400}
    assert all_problems(store, keys) == []


def _endless_writer(root: str, n: int) -> None:
    store = PerceptionStore(root)
    for i in range(1_000_000):
        put_record(store, VH, i, n=n)


def _writer_stuck_before_insert(root: str, stop_at: int, stuck: Any) -> None:
    """Put records until record ``stop_at``, whose second array never gets moved into place."""
    real_replace = os.replace
    calls = [0]

    def replace(src: Any, dst: Any) -> None:
        calls[0] += 1
        if calls[0] == 2 * stop_at + 2:
            stuck.set()
            time.sleep(600)
        real_replace(src, dst)

    store_mod.os.replace = replace  # type: ignore[assignment]  # only in this child process
    store = PerceptionStore(root)
    for i in range(stop_at + 1):
        put_record(store, VH, i)


def _kill(proc: Any) -> None:
    assert proc.pid is not None
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(timeout=10)
    assert proc.exitcode == -signal.SIGKILL


def test_sigkill_in_a_long_series_of_puts_leaves_only_complete_records(tmp_path: Path) -> None:
    proc = SPAWN.Process(target=_endless_writer, args=(str(tmp_path), 100_000))
    proc.start()
    store = PerceptionStore(tmp_path)
    deadline = time.monotonic() + 60
    while len(store.keys()) < 25 and time.monotonic() < deadline and proc.is_alive():
        time.sleep(0.01)
    _kill(proc)
    store.close()

    store = PerceptionStore(tmp_path)
    keys = store.keys()
    assert len(keys) >= 25
    assert all_problems(store, keys) == []
    store.gc(grace_s=0)
    assert store.stats().array_files == 2 * len(keys)  # orphans of the killed put are gone
    assert record_problem(store, put_record(store, VH, 10**7)) is None


def test_sigkill_between_the_array_writes_and_the_insert(tmp_path: Path) -> None:
    stuck = SPAWN.Event()
    proc = SPAWN.Process(target=_writer_stuck_before_insert, args=(str(tmp_path), 12, stuck))
    proc.start()
    deadline = time.monotonic() + 60
    while not stuck.wait(timeout=0.05):
        assert proc.is_alive() and time.monotonic() < deadline, "never reached os.replace"
    _kill(proc)

    store = PerceptionStore(tmp_path)
    keys = store.keys()
    assert len(keys) == 12 and make_key(VH, "t", "1", {"i": 12}) not in keys
    assert all_problems(store, keys) == []
    assert store.stats().array_files == 2 * 12 + 2  # record 12's "data" and its temp "idx"
    assert store.gc(grace_s=0).files_removed == 2
    assert record_problem(store, put_record(store, VH, 12)) is None


def test_importing_does_no_io(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "VIDAGENT_HOME": str(home), "HOME": str(tmp_path / "user")}
    code = "import vidagent.store.perception, vidagent.core.settings; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert not home.exists() and not (tmp_path / "user").exists()


def test_stored_result_repr_names_the_tool(tmp_path: Path) -> None:
    store = PerceptionStore(tmp_path)
    res = store.get(put_record(store, VH, 1))
    assert isinstance(res, StoredResult) and "t@1" in repr(res)


def test_readers_never_mix_two_puts_of_the_same_key(tmp_path: Path) -> None:
    """A re-put (e.g. a nondeterministic tool run twice) racing a reader: the reader sees the old
    record or the new one, never the value of one with the arrays of the other."""
    store = PerceptionStore(tmp_path)
    meta: dict[str, Any] = {"video_hash": VH, "tool": "t", "version": "1", "params": {}}
    key = make_key(VH, "t", "1", {})
    n = 20_000

    def value_and_arrays(i: int) -> tuple[dict[str, int], dict[str, np.ndarray]]:
        data = np.full(n, i, dtype=np.int64)
        return {"i": i, "n": n, "sum": int(data.sum())}, {"data": data, "idx": np.arange(i % 7 + 1)}

    store.put(key, *value_and_arrays(0), **meta)
    done = threading.Event()

    def reput() -> None:
        try:
            for i in range(1, 150):
                store.put(key, *value_and_arrays(i), **meta)
        finally:
            done.set()

    writer = threading.Thread(target=reput)
    writer.start()
    problems, reads = [], 0
    while not done.is_set() or reads < 50:
        reads += 1
        if (problem := record_problem(store, key)) is not None:
            problems.append(problem)
    writer.join()
    assert problems == []
    assert store.get(key).value["i"] == 149  # type: ignore[union-attr]
