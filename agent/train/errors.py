"""Errors of training: each a user mistake the CLI prints as one line (and exits 2)."""

from __future__ import annotations

from vidagent.core.errors import VidagentError


class TrainError(VidagentError):
    """Training cannot start or go on; the message names the file, value or split at fault."""


class LabelError(TrainError):
    """A label file is unreadable, or a label is not in the taxonomy."""


class MissingVideosError(TrainError):
    """Labelled videos are not on disk, or (``cached_only``) not in the perception store."""


class EmptySplitError(TrainError):
    """A split (train or val) has no labelled segment to learn from or to score."""
