"""A fine-tuned adapter of the reasoner: its manifest, and the check that it fits a base model.

``vidagent train llm`` writes a PEFT LoRA folder (``adapter_config.json`` + weights) and
:data:`MANIFEST_FILE` beside them: the base model it was trained on (name and a fingerprint of its
``config.json``), the task, the hash of the prompt templates and of the training data, and the
metrics. Every backend that loads an adapter calls :func:`check_adapter` first, so a LoRA trained
on one base is never applied to another (its shapes might even fit: the result would be noise).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vidagent.core.errors import ConfigError

MANIFEST_FILE = "vidagent_adapter.json"
MANIFEST_VERSION = 1
FINGERPRINT_KEYS = (
    "model_type",
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "max_position_embeddings",
)
"""The ``config.json`` entries that make two bases interchangeable for an adapter."""


class AdapterError(ConfigError):
    """An adapter folder is missing, unreadable, or does not fit the base model it is put on."""


class LoRASettings(BaseModel):
    """The LoRA hyper-parameters an adapter was trained with."""

    model_config = ConfigDict(extra="forbid")

    rank: int = Field(default=16, ge=1)
    alpha: int = Field(default=32, ge=1)
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"]
    )


class AdapterManifest(BaseModel):
    """What an adapter folder is (written last, so its presence means the folder is whole)."""

    model_config = ConfigDict(extra="forbid")

    version: int = MANIFEST_VERSION
    kind: Literal["lora", "full"]
    base_model: str = Field(description="The base model as given to training (hub id or folder)")
    base_fingerprint: str = Field(description="sha256 of the base's config.json architecture")
    task: str = Field(description="The benchmark whose prompts it was trained on")
    prompt_hash: str = Field(description="sha256 of the prompt templates the examples used")
    data_hash: str = Field(description="sha256 of the rendered training examples")
    lora: LoRASettings | None = None
    train_examples: int = 0
    val_examples: int = 0
    metrics: dict[str, float] = Field(default_factory=dict)


def model_fingerprint(model: str | Path) -> str:
    """sha256 of the architecture entries of ``model``'s ``config.json`` (a local folder), or of
    its name when it has none here (a hub id not yet downloaded)."""
    config = Path(model) / "config.json"
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "name:" + hashlib.sha256(str(model).encode()).hexdigest()[:16]
    doc = json.dumps({k: data.get(k) for k in FINGERPRINT_KEYS}, sort_keys=True)
    return hashlib.sha256(doc.encode()).hexdigest()[:16]


def read_manifest(adapter: str | Path) -> AdapterManifest | None:
    """The manifest of an adapter folder; None for a plain PEFT folder without one."""
    path = Path(adapter) / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        return AdapterManifest.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError) as err:
        msg = str(err).splitlines()[0]
        raise AdapterError(f"{path}: not a valid adapter manifest ({msg})") from err


def lora_rank(adapter: str | Path) -> int:
    """The rank ``r`` in the adapter's ``adapter_config.json``."""
    path = Path(adapter) / "adapter_config.json"
    try:
        return int(json.loads(path.read_text(encoding="utf-8"))["r"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise AdapterError(f"{adapter}: not a PEFT LoRA folder (no readable {path.name})") from err


def check_adapter(adapter: str | Path, base_model: str | Path) -> AdapterManifest | None:
    """Check that ``adapter`` is a LoRA folder trained on ``base_model``; its manifest (None for
    a PEFT folder of another tool: only its rank is checked then).

    Raises :class:`AdapterError` (one line) when the folder is not a LoRA adapter or the manifest
    names another base (different architecture fingerprint).
    """
    folder = Path(adapter)
    if not folder.is_dir():
        raise AdapterError(f"adapter {folder}: no such folder")
    manifest = read_manifest(folder)
    if manifest is not None and manifest.kind != "lora":
        raise AdapterError(
            f"adapter {folder}: a full fine-tune, not a LoRA adapter (use it as the model)"
        )
    lora_rank(folder)
    if manifest is not None and manifest.base_fingerprint != model_fingerprint(base_model):
        raise AdapterError(
            f"adapter {folder} was trained on {manifest.base_model}, which does not match the "
            f"base model {base_model} (architecture fingerprint "
            f"{manifest.base_fingerprint} != {model_fingerprint(base_model)})"
        )
    return manifest


VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
"""The ``max_lora_rank`` values vLLM accepts."""


def vllm_max_lora_rank(rank: int) -> int:
    """The smallest ``max_lora_rank`` vLLM accepts that holds a LoRA of ``rank``."""
    for allowed in VLLM_LORA_RANKS:
        if allowed >= rank:
            return allowed
    raise AdapterError(
        f"LoRA rank {rank} is above vLLM's largest max_lora_rank {VLLM_LORA_RANKS[-1]}"
    )
