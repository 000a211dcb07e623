"""Errors of the example-retrieval package, all :class:`~vidagent.core.errors.VidagentError`
subclasses.

Each names the offending bank directory, model or annotation file, so the CLI can print it as one
line. Bad selection parameters (``k``, ``lambda_``...) are
:class:`~vidagent.core.errors.ConfigError`.
"""

from __future__ import annotations

from pathlib import Path

from vidagent.core.errors import VidagentError


class RetrievalError(VidagentError):
    """Base of every error raised on purpose by :mod:`vidagent.retrieval`."""


class IndexMismatchError(RetrievalError):
    """A saved bank does not fit the embedder (or index) it is used with.

    Searching a bank with vectors from another model returns plausible-looking nonsense, so a
    mismatch in embedder id or dimension is refused instead.
    """


class BankFormatError(RetrievalError):
    """A bank directory is missing, incomplete or corrupt (manifest, examples or index file)."""

    def __init__(self, path: Path | str, cause: str) -> None:
        super().__init__(f"example bank {path}: {cause}")
        self.path = str(path)
        self.cause = cause


class EmbedderError(RetrievalError):
    """The text embedding model cannot be loaded or used."""


class AnnotationFormatError(RetrievalError):
    """An annotation file given to a bank builder is missing or not in the expected format."""

    def __init__(self, path: Path | str, cause: str) -> None:
        super().__init__(f"{path}: {cause}")
        self.path = str(path)
        self.cause = cause
