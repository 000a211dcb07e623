"""Example retrieval: an example bank of solved task instances in a FAISS index, and selection of
in-context examples by MMR, top-k or random, with no leakage from the query's own video.

Typical use::

    from vidagent.retrieval import ExampleBank, SentenceTransformerEmbedder, jsonl_examples
    from vidagent.retrieval import select_examples

    embedder = SentenceTransformerEmbedder()            # bundled all-MiniLM-L6-v2, offline
    bank = ExampleBank.build(jsonl_examples("lta_train.jsonl"), embedder)
    bank.save("banks/lta")
    bank = ExampleBank.load("banks/lta", embedder)      # refuses a bank of another embedder
    shots = select_examples(bank, "take knife, cut onion", k=8, exclude_sources={clip_uid})

This package holds only the generic bank; the examples of a benchmark's annotation files come
from that benchmark (``vidagent index build --format <benchmark>``). Nothing here imports faiss,
torch or sentence-transformers until it is used.
"""

from vidagent.retrieval.bank import Example, ExampleBank
from vidagent.retrieval.builders import jsonl_examples
from vidagent.retrieval.errors import (
    AnnotationFormatError,
    BankFormatError,
    EmbedderError,
    IndexMismatchError,
    RetrievalError,
)
from vidagent.retrieval.faiss_index import INDEX_TYPES, IndexParams, IndexType
from vidagent.retrieval.manifest import BankManifest, check_embedder
from vidagent.retrieval.mmr import MMRSelection, mmr, mmr_select
from vidagent.retrieval.select import STRATEGIES, SelectedExample, Strategy, select_examples
from vidagent.retrieval.text_embedder import (
    DEFAULT_MODEL_ID,
    SentenceTransformerEmbedder,
    TextEmbedder,
    normalize_rows,
)

__all__ = [
    "DEFAULT_MODEL_ID",
    "INDEX_TYPES",
    "STRATEGIES",
    "AnnotationFormatError",
    "BankFormatError",
    "BankManifest",
    "EmbedderError",
    "Example",
    "ExampleBank",
    "IndexMismatchError",
    "IndexParams",
    "IndexType",
    "MMRSelection",
    "RetrievalError",
    "SelectedExample",
    "SentenceTransformerEmbedder",
    "Strategy",
    "TextEmbedder",
    "check_embedder",
    "jsonl_examples",
    "mmr",
    "mmr_select",
    "normalize_rows",
    "select_examples",
]
