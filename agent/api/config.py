"""The typed settings of the Python API: what to perceive with, which LLM, how many examples.

:class:`PerceptionConfig` carries every perception option of ``vidagent perceive`` with the same
defaults (``ask``, ``chat``, ``serve`` and ``eval run --videos`` use it too, so they reuse what
``perceive`` stored); :class:`LLMSettings` says where the task LLM runs. Both are pydantic with
``extra="forbid"``: a misspelt field is an error, not a silent default. :func:`validated` turns a
validation failure into one :class:`~vidagent.core.errors.ConfigError` line naming the value.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vidagent.core.errors import ConfigError
from vidagent.tasks.steps import DEFAULT_LLM_MODEL
from vidagent.tools.captioner import DEFAULT_CAPTIONER
from vidagent.tools.segmenter import DEFAULT_WINDOW_SECONDS
from vidagent.tools.visual_embedder import DEFAULT_VISUAL_MODEL

if TYPE_CHECKING:
    from vidagent.llm.config import LLMConfig

DEFAULT_EXAMPLES = 4
"""In-context examples per prompt when an example bank is given and no count is."""

M = TypeVar("M", bound=BaseModel)

__all__ = [
    "DEFAULT_EXAMPLES",
    "LLMSettings",
    "PerceptionConfig",
    "example_count",
    "validated",
]


def validated(cls: type[M], /, **values: Any) -> M:
    """``cls(**values)``; a validation failure is one ConfigError line naming each bad value."""
    try:
        return cls(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}={e.get('input')!r}: {e['msg']}"
            if e["loc"]
            else str(e["msg"]).removeprefix("Value error, ")
            for e in exc.errors()
        )
        raise ConfigError(f"invalid {cls.__name__}: {problems}") from None


class PerceptionConfig(BaseModel):
    """Which perception tools run, on which models, and how a video is cut into segments.

    The defaults are those of ``vidagent perceive``. No field loads a model: the tools are built
    by :func:`vidagent.api.perception.build_tools` and load on first use.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    captions: bool = Field(default=True, description="Caption every segment")
    actions: bool = Field(default=True, description="Zero-shot (or trained-head) action labels")
    embeddings: bool = Field(default=True, description="Segment embeddings (search, relevance)")
    captioner: str = Field(
        default=DEFAULT_CAPTIONER,
        description="Captioning VLM: hub id or folder; with captioner_url the served model name",
    )
    captioner_url: str | None = Field(
        default=None, description="OpenAI-compatible URL of a served VLM (None: in process)"
    )
    caption_prompt: str | None = Field(default=None, description="Instruction or prefix")
    caption_frames: int = Field(default=1, ge=1, description="Frames per segment for captions")
    caption_max_tokens: int = Field(default=40, ge=1, description="Longest caption, in tokens")
    embedder: str = Field(default=DEFAULT_VISUAL_MODEL, description="CLIP/SigLIP model")
    action_model: str | None = Field(
        default=None, description="CLIP/SigLIP model for zero-shot actions (None: the embedder)"
    )
    taxonomy: Path | None = Field(default=None, description="Verb/noun taxonomy JSON")
    action_head: Path | None = Field(default=None, description="Trained head (.safetensors)")
    top_k: int = Field(default=5, ge=1, description="Action labels per segment")
    frames_per_segment: int = Field(default=4, ge=1, description="For actions and embeddings")
    batch_size: int | None = Field(default=None, ge=1, description="Images per forward pass")
    device: str = Field(default="auto", description="auto, cpu, cuda, cuda:N")
    dtype: str = Field(default="auto", description="auto (bf16/fp16 on GPU, fp32 on CPU), ...")
    seconds: float | None = Field(
        default=None, gt=0, description=f"Fixed window length (None: {DEFAULT_WINDOW_SECONDS:g} s)"
    )
    shots: bool = Field(default=False, description="Cut at shot boundaries instead")
    max_shot_seconds: float = Field(
        default=10.0, ge=0, description="With shots: split longer shots (0: never)"
    )
    frame_size: int = Field(default=448, ge=0, description="Decoded short side (0: native)")

    @model_validator(mode="after")
    def _consistent(self) -> PerceptionConfig:
        if self.shots and self.seconds is not None:
            raise ValueError("seconds and shots are exclusive: choose one segmentation")
        if not (self.captions or self.actions or self.embeddings):
            raise ValueError("captions, actions and embeddings all off leave nothing to run")
        return self

    @property
    def actions_model(self) -> str:
        """The model the action recognizer uses (its own, else the embedder's)."""
        return self.action_model or self.embedder

    def segmentation(self) -> dict[str, Any]:
        """The segmentation keywords of :func:`vidagent.tools.perceive.perceive`."""
        if self.shots:
            return {
                "seconds": None,
                "shots": True,
                "shot_params": {"max_seconds": self.max_shot_seconds or None},
                "frame_size": self.frame_size or None,
            }
        seconds = self.seconds if self.seconds is not None else DEFAULT_WINDOW_SECONDS
        return {"seconds": seconds, "shots": False, "shot_params": None,
                "frame_size": self.frame_size or None}  # fmt: skip


class LLMSettings(BaseModel):
    """Where the task LLM runs: served by vLLM at ``urls`` (replicas), else in process."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    urls: list[str] = Field(
        default_factory=list, description="OpenAI-compatible server URLs (none: in process)"
    )
    model: str = Field(
        default=DEFAULT_LLM_MODEL,
        description="Hub id or folder; with urls the served name (the default: the first served)",
    )
    cache_dir: Path | None = Field(default=None, description="Response cache (None: home/llm)")
    adapter: Path | None = Field(
        default=None,
        description="LoRA adapter folder (vidagent train llm) for the in-process LLM; with urls "
        "the server serves it (--lora-modules NAME=DIR) and model names it",
    )

    @property
    def served_model(self) -> str | None:
        """The model name to ask a server for; None (its first model) for the default."""
        return None if self.model == DEFAULT_LLM_MODEL else self.model

    def llm_config(self, **overrides: Any) -> LLMConfig:
        """The :class:`~vidagent.llm.config.LLMConfig` these settings mean."""
        from vidagent.llm.config import LLMConfig

        served = bool(self.urls)
        return LLMConfig(
            urls=list(self.urls),
            model=self.served_model if served else self.model,
            hf_model=None if served else self.model,
            cache_dir=self.cache_dir,
            adapter=self.adapter,
            **overrides,
        )


def example_count(examples: int | None, has_bank: bool) -> int:
    """In-context examples per prompt: ``examples``, or :data:`DEFAULT_EXAMPLES` with a bank and
    none without. Asking for examples without a bank is a ConfigError (they would be silently 0)."""
    if examples is None:
        return DEFAULT_EXAMPLES if has_bank else 0
    if examples < 0:
        raise ConfigError(f"examples={examples}: must be >= 0")
    if examples > 0 and not has_bank:
        raise ConfigError(f"examples={examples} needs an example bank (bank=...)")
    return examples
