"""The manifest of a saved example bank: what it holds and how it was built, checked on load.

A bank searched with vectors of another model returns plausible-looking nonsense, so the manifest
names the embedder (id, dimension) and the index, and every load compares it with the files and
with the embedder in hand. File names and the on-disk format version live here too.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from vidagent.core.records import Record
from vidagent.retrieval.errors import BankFormatError, IndexMismatchError
from vidagent.retrieval.faiss_index import IndexParams
from vidagent.retrieval.text_embedder import TextEmbedder

FORMAT_NAME: Literal["vidagent-example-bank"] = "vidagent-example-bank"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
EXAMPLES = "examples.jsonl"
INDEX = "index.faiss"


class BankManifest(Record):
    """What a saved bank contains and how it was built; checked on every load."""

    format: Literal["vidagent-example-bank"] = FORMAT_NAME
    format_version: int = FORMAT_VERSION
    embedder: str = Field(description="Embedder id; queries must come from the same one")
    embedder_model: str | None = Field(default=None, description="How to load it; None: default")
    dim: int = Field(ge=1)
    metric: Literal["inner_product"] = "inner_product"
    normalized: bool = True
    count: int = Field(ge=0)
    index: IndexParams
    tasks: dict[str, int] = Field(default_factory=dict)
    examples_hash: str = Field(description="blake2b-128 of examples.jsonl")
    created: str = ""


def content_hash(data: bytes) -> str:
    """blake2b-128 hex digest (the manifest's ``examples_hash``)."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def read_manifest(directory: Path | str) -> BankManifest:
    """The validated manifest of the bank in ``directory`` (nothing else is read)."""
    path = Path(directory)
    if not path.is_dir():
        raise BankFormatError(path, "no such directory")
    file = path / MANIFEST
    if not file.is_file():
        raise BankFormatError(path, f"no {MANIFEST} (not an example bank, or an interrupted save)")
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BankFormatError(path, f"{MANIFEST} is not valid JSON ({exc})") from exc
    if not isinstance(raw, dict) or raw.get("format") != FORMAT_NAME:
        raise BankFormatError(path, f"{MANIFEST} is not a {FORMAT_NAME} manifest")
    version = raw.get("format_version")
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise BankFormatError(
            path,
            f"format version {version} is newer than this vidagent reads ({FORMAT_VERSION})",
        )
    try:
        return BankManifest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BankFormatError(path, f"{MANIFEST} is corrupt: {where}: {first['msg']}") from exc


def check_embedder(manifest: BankManifest, embedder: TextEmbedder, path: Path | str) -> None:
    """Refuse an embedder whose id or dimension differs from the one the bank was built with."""
    if embedder.id != manifest.embedder:
        raise IndexMismatchError(
            f"example bank {path} was built with embedder {manifest.embedder!r} "
            f"(dim {manifest.dim}) but the query embedder is {embedder.id!r}: search it with the "
            "same embedder or rebuild the bank"
        )
    if embedder.dim != manifest.dim:
        raise IndexMismatchError(
            f"example bank {path} has dimension {manifest.dim} but embedder {embedder.id!r} "
            f"produces {embedder.dim}-d vectors: rebuild the bank with this embedder"
        )
