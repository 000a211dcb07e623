"""Example retrieval: an example bank of solved task instances in a FAISS index, and selection of
in-context examples by MMR, top-k or random, with no leakage from the query's own video.

Typical use::

    from agent.retrieval import ExampleBank, SentenceTransformerEmbedder, lta_examples
    from agent.retrieval import select_examples

    embedder = SentenceTransformerEmbedder()            # bundled all-MiniLM-L6-v2, offline
    bank = ExampleBank.build(lta_examples("fho_lta_train.json"), embedder)
    bank.save("banks/lta")
    bank = ExampleBank.load("banks/lta", embedder)      # refuses a bank of another embedder
    shots = select_examples(bank, "take knife, cut onion", k=8, exclude_sources={clip_uid})

Nothing here imports faiss, torch or sentence-transformers until it is used.
"""

from agent.retrieval.bank import Example, ExampleBank
from agent.retrieval.builders import (
    SOURCE_FORMATS,
    LTAAction,
    QAItem,
    clean_ego4d_label,
    jsonl_examples,
    load_examples,
    lta_actions_text,
    lta_examples,
    qa_examples,
    qa_input_text,
    qa_target_text,
    read_qa_csv,
)
from agent.retrieval.embedder import (
    DEFAULT_MODEL_ID,
    SentenceTransformerEmbedder,
    TextEmbedder,
    normalize_rows,
)
from agent.retrieval.errors import (
    AnnotationFormatError,
    BankFormatError,
    EmbedderError,
    IndexMismatchError,
    RetrievalError,
)
from agent.retrieval.faiss_index import INDEX_TYPES, IndexParams, IndexType
from agent.retrieval.manifest import BankManifest, check_embedder
from agent.retrieval.mmr import MMRSelection, mmr, mmr_select
from agent.retrieval.select import STRATEGIES, SelectedExample, Strategy, select_examples

__all__ = [
    "DEFAULT_MODEL_ID",
    "INDEX_TYPES",
    "SOURCE_FORMATS",
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
    "LTAAction",
    "MMRSelection",
    "QAItem",
    "RetrievalError",
    "SelectedExample",
    "SentenceTransformerEmbedder",
    "Strategy",
    "TextEmbedder",
    "check_embedder",
    "clean_ego4d_label",
    "jsonl_examples",
    "load_examples",
    "lta_actions_text",
    "lta_examples",
    "mmr",
    "mmr_select",
    "normalize_rows",
    "qa_examples",
    "qa_input_text",
    "qa_target_text",
    "read_qa_csv",
    "select_examples",
]
