"""Keys of the perception store: what a stored result is filed under.

A key is the sha256 of the canonical JSON of every input that changes a perception result: the
video's *bytes* (:func:`file_digest`, not its path), the tool name, the tool version, the tool's
parameters and :data:`STORE_FORMAT`. Split out of :mod:`vidagent.store`, which re-exports these
names.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat as stat_mod
from collections.abc import Mapping
from enum import Enum
from typing import Any

import numpy as np
from pydantic import BaseModel

from vidagent.core.errors import VideoNotFoundError

STORE_FORMAT = 1
"""Part of every key: bump when what is stored for the same inputs changes meaning."""
HASH_CHUNK = 4 << 20
"""Bytes read per step when hashing a file: videos are GBs, memory stays flat."""


def file_digest(path: str | os.PathLike[str]) -> str:
    """blake2b-128 hex digest of the file's bytes, read in :data:`HASH_CHUNK` pieces.

    The same bytes at two paths give the same digest. Raises :class:`VideoNotFoundError` if ``path``
    is not a regular file.
    """
    try:
        if not stat_mod.S_ISREG(os.stat(path).st_mode):  # before open(): a FIFO would block
            raise VideoNotFoundError(path, "not a regular file")
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise VideoNotFoundError(path, "no such file") from exc
    h = hashlib.blake2b(digest_size=16)
    buf = bytearray(HASH_CHUNK)
    view = memoryview(buf)
    with open(path, "rb") as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def _jsonable(obj: Any, where: str) -> Any:
    """``obj`` as plain JSON types (pydantic models dumped, tuples as lists, numpy scalars unboxed).

    Raises :class:`TypeError` naming ``where`` (e.g. ``params['fps']``) for anything else, NaN and
    infinities included: they have no canonical JSON form.
    """
    if isinstance(obj, BaseModel):
        return _jsonable(obj.model_dump(mode="json"), where)
    if isinstance(obj, Enum):
        return _jsonable(obj.value, where)
    if isinstance(obj, np.generic) and not isinstance(obj, np.object_):
        return _jsonable(obj.item(), where)
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise TypeError(f"{where} = {obj!r} is not JSON-able (not finite)")
        return obj
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"{where} has a non-string key {k!r}")
            out[k] = _jsonable(v, f"{where}[{k!r}]")
        return out
    if isinstance(obj, list | tuple):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    raise TypeError(f"{where} = {obj!r} ({type(obj).__name__}) is not JSON-able")


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def make_key(
    video_hash: str, tool: str, version: str, params: Mapping[str, Any] | BaseModel
) -> str:
    """sha256 hex of the canonical JSON of the inputs and :data:`STORE_FORMAT`.

    Param order does not matter; types do (``1`` and ``1.0`` give different keys, which costs a
    miss, never a wrong hit). Raises :class:`TypeError` naming a param that is not JSON-able.
    """
    for name, s in (("video_hash", video_hash), ("tool", tool), ("version", version)):
        if not isinstance(s, str) or not s:
            raise TypeError(f"{name} must be a non-empty string, got {s!r}")
    p = _jsonable(params, "params")
    if not isinstance(p, dict):
        raise TypeError(
            f"params must be a mapping or a pydantic model, got {type(params).__name__}"
        )
    doc = {
        "format": STORE_FORMAT,
        "video": video_hash,
        "tool": tool,
        "version": version,
        "params": p,
    }
    return hashlib.sha256(_canonical(doc).encode()).hexdigest()
