"""Content-addressed response cache for deterministic LLM calls, in one SQLite file.

Key = sha256 of the canonical JSON of (cache version, backend name, model, messages, sampling,
structured output): every input that changes the output. Only deterministic calls are cached —
greedy (temperature 0) or seeded, in which case the seed is part of the key through ``sampling``.
The directory is passed in (the CLI decides, usually ``$VIDAGENT_HOME``); SQLite in WAL mode lets
several processes share it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path

from vidagent.core.errors import StoreError
from vidagent.llm.types import LLMRequest, LLMResponse

CACHE_VERSION = 1
CACHE_FILE = "llm_cache.sqlite3"


def cache_key(backend: str, model: str, request: LLMRequest) -> str:
    """The hex sha256 that identifies ``request`` sent to ``model`` on backend ``backend``."""
    payload = {
        "version": CACHE_VERSION,
        "backend": backend,
        "model": model,
        "messages": [m.model_dump(mode="json") for m in request.messages],
        "sampling": request.sampling.model_dump(mode="json"),
        "structured": request.structured.model_dump(mode="json") if request.structured else None,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def cacheable(request: LLMRequest) -> bool:
    """Only calls whose output is a function of the request are cached."""
    return request.sampling.deterministic


class ResponseCache:
    """``get``/``put`` of responses by key, in ``<directory>/llm_cache.sqlite3``."""

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / CACHE_FILE
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS responses "
                "(key TEXT PRIMARY KEY, response TEXT NOT NULL)"
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"cannot open the LLM response cache at {self.path}: {exc} (make the folder "
                "writable, point VIDAGENT_HOME elsewhere, or turn the cache off with --no-cache)"
            ) from exc

    def get(self, key: str) -> LLMResponse | None:
        """The stored response (marked ``cached=True``, latency 0), or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT response FROM responses WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        stored = LLMResponse.model_validate_json(row[0])
        return stored.model_copy(update={"cached": True, "latency_s": 0.0})

    def put(self, key: str, response: LLMResponse) -> None:
        """Store ``response`` under ``key`` (last write wins)."""
        data = response.model_copy(update={"cached": False}).model_dump_json()
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, response) VALUES (?, ?)", (key, data)
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
