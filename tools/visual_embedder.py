"""Segment embeddings: one L2-normalized visual vector per segment, and text in the same space.

A segment's vector is the mean of its frames' image embeddings (each normalized first, then the
mean renormalized), from a CLIP/SigLIP-family dual encoder. These are the vectors behind the
segment tokens: moment search and localization compare them with :meth:`SegmentEmbedder.embed_text`
of a query (cosine = dot product, both sides are unit length). :class:`VisualEncoder` is the shared
machinery; the zero-shot action recognizer (:mod:`vidagent.tools.actions`) uses it too, and when
both tools name the same model the pipeline runs the image encoder once for both.

Text is padded the way each family was trained: SigLIP to the full ``max_length`` (it pools the
last position, so dynamic padding would change a text's vector with its batch), CLIP dynamically.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from vidagent.core.records import EmbeddingRef, Segment
from vidagent.tools.models import (
    AdaptiveBatch,
    LoadedModel,
    ModelParams,
    ToolOutput,
    load_model,
    model_fingerprint,
    resolve_device,
    resolve_dtype,
)
from vidagent.tools.video import FrameBatch

DEFAULT_VISUAL_MODEL = "google/siglip-so400m-patch14-384"
"""Default model of the embedder and the action recognizer (a GPU user's choice; ~1.7 GB)."""
_MAX_LENGTH_PADDING = frozenset({"siglip", "siglip2"})


def l2_normalize(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norm = np.linalg.norm(x, axis=axis, keepdims=True)
    return (x / np.maximum(norm, 1e-12)).astype(np.float32)


def _features(out: Any) -> Any:
    """transformers 5 returns an output object (``pooler_output``); older versions a tensor."""
    return out if hasattr(out, "shape") else out.pooler_output


class VisualEncoder:
    """A dual encoder (image and text towers) loaded lazily, with OOM-safe batching."""

    def __init__(
        self,
        model: str,
        *,
        device: str = "auto",
        dtype: Any = "auto",
        batch_size: int = 32,
        revision: str | None = None,
    ) -> None:
        self.model_id = model
        self.device = device
        self.dtype = dtype
        self.revision = revision
        self.batch = AdaptiveBatch(batch_size, what=f"encoder {model}")
        self._loaded: LoadedModel | None = None
        self.forward_calls = 0
        """Number of image/text forward passes run (for tests and benchmarks)."""

    @property
    def loaded(self) -> LoadedModel:
        if self._loaded is None:
            self._loaded = load_model(
                self.model_id,
                "dual-encoder",
                device=self.device,
                dtype=self.dtype,
                revision=self.revision,
            )
        return self._loaded

    @property
    def dim(self) -> int:
        cfg = self.loaded.model.config
        projection = getattr(cfg, "projection_dim", None)
        return int(projection or cfg.text_config.hidden_size)

    @property
    def logit_scale(self) -> float:
        """The model's learned temperature (``exp(logit_scale)``); 100 if it has none."""
        import torch

        param = getattr(self.loaded.model, "logit_scale", None)
        if param is None:
            return 100.0
        with torch.no_grad():
            return float(param.detach().float().exp().reshape(-1)[0])

    def encode_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """``(N, D)`` float32 unit vectors for ``N`` RGB uint8 images ``(H, W, 3)``."""
        if not images:
            return np.zeros((0, self.dim), np.float32)
        lm = self.loaded

        def run(batch: Sequence[np.ndarray]) -> list[np.ndarray]:
            import torch

            inputs = lm.processor(images=list(batch), return_tensors="pt")
            inputs = inputs.to(lm.device, dtype=getattr(torch, lm.dtype))
            with torch.inference_mode():
                feats = _features(lm.model.get_image_features(**inputs))
            self.forward_calls += 1
            return list(l2_normalize(feats.float().cpu().numpy()))

        return np.stack(self.batch.map(run, list(images)))

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        """``(N, D)`` float32 unit vectors for ``N`` texts, in the image embeddings' space."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        lm = self.loaded
        cfg = lm.model.config
        tokenizer = lm.processor.tokenizer
        max_len = min(
            int(getattr(tokenizer, "model_max_length", 10**6) or 10**6),
            int(getattr(cfg.text_config, "max_position_embeddings", 10**6)),
        )
        padding: bool | str = "max_length" if cfg.model_type in _MAX_LENGTH_PADDING else True

        def run(batch: Sequence[str]) -> list[np.ndarray]:
            import torch

            inputs = tokenizer(
                list(batch),
                padding=padding,
                truncation=True,
                max_length=max_len,
                return_tensors="pt",
            ).to(lm.device)
            with torch.inference_mode():
                feats = _features(lm.model.get_text_features(**inputs))
            self.forward_calls += 1
            return list(l2_normalize(feats.float().cpu().numpy()))

        return np.stack(self.batch.map(run, list(texts)))

    def encode_segments(self, frames: Sequence[FrameBatch]) -> np.ndarray:
        """One unit vector per segment: the renormalized mean of its frames' embeddings."""
        if not frames:
            return np.zeros((0, self.dim), np.float32)
        counts = [len(fb) for fb in frames]
        if min(counts) == 0:
            raise ValueError("every segment needs at least one frame")
        per_frame = self.encode_images([img for fb in frames for img in fb.frames])
        bounds = np.cumsum([0, *counts])
        means = [per_frame[a:b].mean(axis=0) for a, b in itertools.pairwise(bounds)]
        return l2_normalize(np.stack(means))


class EmbedderParams(ModelParams):
    """Segment embedder settings."""

    model: str = Field(default=DEFAULT_VISUAL_MODEL, min_length=1)
    batch_size: int = Field(default=32, ge=1)


class SegmentEmbedder:
    """Perception tool: one visual embedding per segment, stored as a ``(segments, D)`` array."""

    name = "embedder"
    version = "1"

    def __init__(self, params: EmbedderParams | None = None) -> None:
        self.params = params or EmbedderParams()
        p = self.params
        self.encoder = VisualEncoder(
            p.model, device=p.device, dtype=p.dtype, batch_size=p.batch_size, revision=p.revision
        )
        self._fingerprint: str | None = None

    def cache_params(self, hasher: Callable[[Path], str] | None = None) -> dict[str, Any]:
        if self._fingerprint is None:
            self._fingerprint = model_fingerprint(
                self.params.model, self.params.revision, hasher=hasher
            )
        fields = self.params.cache_fields()
        fields["model"] = self._fingerprint
        fields["dtype"] = resolve_dtype(self.params.dtype, resolve_device(self.params.device))
        return fields

    def encoder_signature(self) -> tuple[Any, ...]:
        """Equal for two tools whose segment embeddings are interchangeable."""
        p = self.params
        return (p.model, p.revision, p.device, p.dtype, p.frames_per_segment)

    def setup(self) -> None:
        _ = self.encoder.loaded

    def embed_segments(self, frames: Sequence[FrameBatch]) -> np.ndarray:
        """``(len(frames), D)`` unit vectors, one per segment."""
        return self.encoder.encode_segments(frames)

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), D)`` unit vectors in the segments' space (for query-to-segment search)."""
        return self.encoder.encode_text(texts)

    def run(self, frames: Sequence[FrameBatch]) -> ToolOutput:
        emb = self.embed_segments(frames)
        items = [{"frames": [int(i) for i in fb.indices]} for fb in frames]
        return ToolOutput(items, {"embeddings": emb})

    def summary(self, output: ToolOutput) -> dict[str, Any]:
        """Extra fields of the stored value (next to ``items``)."""
        dim = int(output.arrays["embeddings"].shape[1]) if output.items else self.encoder.dim
        return {"dim": dim, "model": self.params.model}

    def annotate(
        self, segments: Sequence[Segment], value: dict[str, Any], key: str
    ) -> list[Segment]:
        dim = int(value["dim"])
        return [
            seg.model_copy(
                update={"embedding": EmbeddingRef(key=key, row=i, dim=dim, model=self.params.model)}
            )
            for i, seg in enumerate(segments)
        ]
