"""Training what the anchors train: action heads on frozen segment embeddings, LoRA adapters of
the LLM on a task's own prompts.

:func:`train_actions` (``vidagent train actions``) fits the verb/noun heads that
``perceive --action-head`` loads: labels (:mod:`.labels`), segment embeddings from the store
(:mod:`.features`), the fit (:mod:`.fit`), Ego4D recognition metrics (:mod:`.metrics`).
"""

from vidagent.train.actions import TrainActionsConfig, TrainReport, metrics_path, train_actions
from vidagent.train.errors import EmptySplitError, LabelError, MissingVideosError, TrainError
from vidagent.train.fit import ActionData, EpochReport, FitResult, HeadOptions, fit_head
from vidagent.train.labels import ActionSpan, infer_taxonomy, load_labels, segment_labels
from vidagent.train.metrics import RecognitionMetrics, majority_metrics, recognition_metrics

__all__ = [
    "ActionData",
    "ActionSpan",
    "EmptySplitError",
    "EpochReport",
    "FitResult",
    "HeadOptions",
    "LabelError",
    "MissingVideosError",
    "RecognitionMetrics",
    "TrainActionsConfig",
    "TrainError",
    "TrainReport",
    "fit_head",
    "infer_taxonomy",
    "load_labels",
    "majority_metrics",
    "metrics_path",
    "recognition_metrics",
    "segment_labels",
    "train_actions",
]
