"""The content-addressed perception store (SQLite records + immutable ``.npy`` arrays).

:mod:`.perception` the store itself, :mod:`.keys` content hashes and cache keys, :mod:`.db` the
SQLite schema and connections, :mod:`.records` what it stores and reports, :mod:`.maintenance`
stats and garbage collection, :mod:`.claims` work claims between processes.
"""

from vidagent.store.claims import CLAIM_TTL_S, ClaimHolder, Claims
from vidagent.store.keys import STORE_FORMAT, file_digest, make_key
from vidagent.store.perception import PerceptionStore
from vidagent.store.records import (
    ArrayInfo,
    Computed,
    GcReport,
    StoredMeta,
    StoredResult,
    StoreStats,
)

__all__ = [
    "CLAIM_TTL_S",
    "STORE_FORMAT",
    "ArrayInfo",
    "ClaimHolder",
    "Claims",
    "Computed",
    "GcReport",
    "PerceptionStore",
    "StoreStats",
    "StoredMeta",
    "StoredResult",
    "file_digest",
    "make_key",
]
