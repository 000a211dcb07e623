"""``vidagent train actions``: verb and noun heads on frozen segment embeddings, as PALM and AntGPT
train their action recognizers before the LLM ever sees a label.

:func:`train_actions` reads the labels (:mod:`vidagent.train.labels`: an Ego4D LTA/recognition
json or a plain CSV/JSONL, and the taxonomy), finds the videos, gets their segment embeddings
from the perception store (:mod:`vidagent.train.features`: perceived first, cached), turns each
labelled action into the segments it covers, fits the heads (:mod:`vidagent.train.fit`: linear by
default, early-stopped on the val split) and writes

- the head file ``perceive --action-head`` loads (:mod:`vidagent.tools.action_head`), and
- ``<head stem>.metrics.json`` beside it: a :class:`TrainReport` with the Ego4D recognition metrics
  on val (:mod:`vidagent.train.metrics`), the chance row, the options and every epoch.

Both are written to temp files and renamed at the end, so a failed run leaves nothing half
written where a head is expected. The val metrics are computed from the written file through the
same loader and arithmetic that perception uses, so they are the numbers ``perceive`` will get.
Without a val file, ``val_fraction`` of the training videos (by video, seeded) are held out.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vidagent.core.errors import ConfigError
from vidagent.tools.action_head import load_action_head, save_action_head
from vidagent.tools.perceive_records import Progress
from vidagent.tools.taxonomy import Taxonomy
from vidagent.tools.visual_embedder import SegmentEmbedder
from vidagent.train.errors import EmptySplitError
from vidagent.train.features import VideoFeatures, resolve_videos, segment_features
from vidagent.train.fit import ActionData, EpochReport, FitResult, HeadOptions, fit_head
from vidagent.train.labels import ActionSpan, infer_taxonomy, load_labels, segment_labels
from vidagent.train.metrics import RecognitionMetrics, majority_metrics, recognition_metrics


class TrainActionsConfig(BaseModel):
    """What to train on and where the head goes (the CLI's options, checked)."""

    model_config = ConfigDict(extra="forbid")

    labels: Path = Field(description="Training labels: Ego4D .json, .csv or .jsonl")
    val_labels: Path | None = Field(default=None, description="Val labels; None: hold out")
    videos_dir: Path
    out: Path = Field(description="The head file (.safetensors)")
    taxonomy: Path | None = Field(default=None, description="None: the label files' names")
    val_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    seconds: float = Field(default=2.0, gt=0.0, description="Segment length, as perceive's")
    frame_size: int | None = Field(
        default=448, ge=1, description="Decode short side, as perceive's"
    )
    min_cover: float = Field(default=0.5, gt=0.0, le=1.0)
    cached_only: bool = Field(default=False, description="Embeddings must be in the store already")
    head: HeadOptions = Field(default_factory=HeadOptions)


class SplitSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str
    videos: int
    labels: int
    samples: int


class TrainReport(BaseModel):
    """The metrics file: what was trained on what, and how well it does on val."""

    model_config = ConfigDict(extra="forbid")

    head: str
    embedding_model: str
    frames_per_segment: int
    seconds: float
    taxonomy: str
    verbs: int
    nouns: int
    train: SplitSummary
    val: SplitSummary
    val_metrics: RecognitionMetrics
    train_metrics: RecognitionMetrics
    chance: RecognitionMetrics = Field(description="Always the training set's most common classes")
    best_epoch: int
    epochs_run: int
    fit_seconds: float
    samples_per_second: float
    options: HeadOptions
    history: list[EpochReport]


def metrics_path(head: Path) -> Path:
    """``head.safetensors`` -> ``head.metrics.json``."""
    return head.with_name(f"{head.stem}.metrics.json")


def hold_out(
    spans: Sequence[ActionSpan], fraction: float, seed: int
) -> tuple[list[ActionSpan], list[ActionSpan]]:
    """Train and val spans, ``fraction`` of the videos (at least one) held out, seeded."""
    videos = sorted({s.video for s in spans})
    if len(videos) < 2:
        raise EmptySplitError(
            f"cannot hold out a val split from {len(videos)} labelled video(s): give a val file"
        )
    random.Random(seed).shuffle(videos)
    held = set(videos[: max(1, round(fraction * len(videos)))])
    return [s for s in spans if s.video not in held], [s for s in spans if s.video in held]


def action_data(
    spans: Sequence[ActionSpan], features: Mapping[str, VideoFeatures], min_cover: float
) -> ActionData:
    """One sample per (segment, label) pair (the rule of :func:`segment_labels`)."""
    rows, verbs, nouns = [], [], []
    by_video: dict[str, list[ActionSpan]] = {}
    for span in spans:
        by_video.setdefault(span.video, []).append(span)
    for video, video_spans in by_video.items():
        feats = features[video]
        for i, span in segment_labels(video_spans, feats.segments, min_cover=min_cover):
            rows.append(feats.embeddings[i])
            verbs.append(span.verb)
            nouns.append(span.noun)
    dim = next(iter(features.values())).embeddings.shape[1] if features else 0
    emb = np.stack(rows).astype(np.float32) if rows else np.zeros((0, dim), np.float32)
    return ActionData(emb, np.asarray(verbs, np.int64), np.asarray(nouns, np.int64))


def _split(name: str, source: str, spans: Sequence[ActionSpan], data: ActionData) -> SplitSummary:
    if len(data) == 0:
        raise EmptySplitError(
            f"{name} split ({source}): none of its {len(spans)} labels covers a segment"
        )
    return SplitSummary(
        source=source, videos=len({s.video for s in spans}), labels=len(spans), samples=len(data)
    )


def _write_head(
    path: Path, fit: FitResult, taxonomy: Taxonomy, model: str
) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Write the head to ``path``; its logits as perception computes them (read back from it)."""
    w = fit.weights
    save_action_head(
        path, verb_weight=w.verb_w, verb_bias=w.verb_b, noun_weight=w.noun_w,
        noun_bias=w.noun_b, taxonomy=taxonomy, embedding_model=model,
        hidden_weight=w.hidden_w, hidden_bias=w.hidden_b,
    )  # fmt: skip
    _, head = load_action_head(path)
    return head.logits


def train_actions(
    config: TrainActionsConfig,
    *,
    embedder: SegmentEmbedder,
    store: Any,
    progress: Progress | None = None,
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> TrainReport:
    """Train, write the head and its metrics file (see the module doc); the report."""
    out = config.out
    if out.suffix != ".safetensors":
        raise ConfigError(f"--out {out}: the head file must end in .safetensors")
    label_files = [config.labels, *([config.val_labels] if config.val_labels else [])]
    taxonomy = Taxonomy.load(config.taxonomy) if config.taxonomy else infer_taxonomy(label_files)
    train_spans = load_labels(config.labels, taxonomy)
    if config.val_labels is not None:
        val_spans, val_source = load_labels(config.val_labels, taxonomy), str(config.val_labels)
    else:
        train_spans, val_spans = hold_out(train_spans, config.val_fraction, config.head.seed)
        val_source = f"{config.labels} (held-out {config.val_fraction:g} of the videos)"
    for name, source, spans in (
        ("train", str(config.labels), train_spans),
        ("val", val_source, val_spans),
    ):
        if not spans:
            raise EmptySplitError(f"{name} split ({source}): no labels")
    videos = resolve_videos([s.video for s in (*train_spans, *val_spans)], config.videos_dir)
    features = segment_features(
        videos, embedder, store, seconds=config.seconds, frame_size=config.frame_size,
        cached_only=config.cached_only, progress=progress,
    )  # fmt: skip
    train = action_data(train_spans, features, config.min_cover)
    val = action_data(val_spans, features, config.min_cover)
    train_summary = _split("train", str(config.labels), train_spans, train)
    val_summary = _split("val", val_source, val_spans, val)
    n_verbs, n_nouns = len(taxonomy.verbs), len(taxonomy.nouns)
    fit = fit_head(train, val, n_verbs, n_nouns, config.head, on_epoch)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = embedder.params.model
    metrics = metrics_path(out)
    tmp_head = out.with_name(f".{out.stem}.tmp{os.getpid()}.safetensors")
    tmp_metrics = metrics.with_name(f".{metrics.name}.tmp{os.getpid()}")
    try:
        logits = _write_head(tmp_head, fit, taxonomy, model)
        report = TrainReport(
            head=str(out), embedding_model=model,
            frames_per_segment=embedder.params.frames_per_segment, seconds=config.seconds,
            taxonomy=taxonomy.source, verbs=n_verbs, nouns=n_nouns,
            train=train_summary, val=val_summary,
            val_metrics=recognition_metrics(*logits(val.embeddings), val.verbs, val.nouns),
            train_metrics=recognition_metrics(*logits(train.embeddings), train.verbs, train.nouns),
            chance=majority_metrics(
                train.verbs, train.nouns, val.verbs, val.nouns, n_verbs, n_nouns
            ),
            best_epoch=fit.best_epoch, epochs_run=len(fit.history),
            fit_seconds=round(fit.seconds, 3),
            samples_per_second=round(fit.samples_per_second, 1),
            options=config.head, history=fit.history,
        )  # fmt: skip
        tmp_metrics.write_text(json.dumps(report.model_dump(mode="json"), indent=1) + "\n")
        os.replace(tmp_head, out)
        os.replace(tmp_metrics, metrics)
    finally:
        tmp_head.unlink(missing_ok=True)
        tmp_metrics.unlink(missing_ok=True)
    return report
