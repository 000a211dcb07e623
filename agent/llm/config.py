"""LLM settings and the one factory that turns them into an :class:`LLMClient`.

``build_backend`` is the only place that builds backends from names. ``backend="auto"`` picks, in
order: the OpenAI-compatible client if URLs are given; the in-process vLLM engine if ``vllm`` is
importable; transformers on CPU otherwise.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vidagent.core.errors import ConfigError
from vidagent.core.settings import load_settings
from vidagent.llm.backend import LLMBackend, LLMClient
from vidagent.llm.cache import ResponseCache
from vidagent.llm.retry import RetryPolicy

BackendName = Literal["auto", "openai", "vllm", "hf"]


class LLMConfig(BaseModel):
    """How vidagent reaches its LLM. Unknown keys are an error."""

    model_config = ConfigDict(extra="forbid")

    backend: BackendName = "auto"
    urls: list[str] = Field(default_factory=list, description="OpenAI-compatible base URLs")
    model: str | None = Field(default=None, description="None: the server's first model")
    api_key: str = "EMPTY"
    max_concurrency: int = Field(default=64, ge=1)
    timeout_s: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=3, ge=0)
    retry_base_delay_s: float = Field(default=0.5, ge=0)
    retry_max_delay_s: float = Field(default=8.0, ge=0)
    cache: bool = True
    cache_dir: Path | None = Field(default=None, description="None: <vidagent home>/llm")
    temperature: float = Field(default=0.0, ge=0, description="Default for the chat agent")
    hf_model: str | None = Field(default=None, description="Path or hub id for the hf backend")
    hf_device: str = "cpu"
    adapter: Path | None = Field(
        default=None,
        description="A LoRA adapter folder (vidagent train llm) applied by the in-process "
        "backends; a server serves its adapters itself (--lora-modules)",
    )
    vllm_engine_args: dict[str, Any] = Field(
        default_factory=dict, description="Extra keyword arguments of vllm.LLM(...)"
    )

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(
            max_retries=self.max_retries,
            base_delay_s=self.retry_base_delay_s,
            max_delay_s=self.retry_max_delay_s,
        )


def resolve_backend_name(config: LLMConfig) -> Literal["openai", "vllm", "hf"]:
    """The concrete backend ``config`` asks for (``auto`` resolved as documented above)."""
    if config.backend != "auto":
        return config.backend
    if config.urls:
        return "openai"
    if importlib.util.find_spec("vllm") is not None:
        return "vllm"
    return "hf"


def build_backend(config: LLMConfig) -> LLMClient:
    """An :class:`LLMClient` (cache, limit, meter) around the backend ``config`` names."""
    name = resolve_backend_name(config)
    backend: LLMBackend
    if name == "openai":
        if not config.urls:
            raise ConfigError("the openai backend needs at least one URL (--url)")
        if config.adapter is not None:
            raise ConfigError(
                f"adapter {config.adapter}: a server applies its own adapters; start it with "
                "--enable-lora --lora-modules NAME=DIR and pass --llm-model NAME"
            )
        from vidagent.llm.openai_backend import OpenAIBackend

        backend = OpenAIBackend(
            config.urls,
            model=config.model,
            api_key=config.api_key,
            timeout_s=config.timeout_s,
            retry=config.retry,
            max_connections=config.max_concurrency,
        )
    elif name == "vllm":
        if not config.model:
            raise ConfigError("the vllm backend needs a model (path or hub id) in 'model'")
        from vidagent.llm.vllm_backend import VLLMBackend

        backend = VLLMBackend(
            config.model, engine_args=config.vllm_engine_args, adapter=config.adapter
        )
    else:
        model = config.hf_model or config.model
        if not model:
            raise ConfigError(
                "no LLM configured: give a server URL, install vllm, or set hf_model "
                "(a transformers model path) for the CPU fallback"
            )
        from vidagent.llm.hf_backend import HFBackend

        backend = HFBackend(model, device=config.hf_device, adapter=config.adapter)
    cache = None
    if config.cache:
        cache = ResponseCache(config.cache_dir or load_settings().home / "llm")
    return LLMClient(backend, max_concurrency=config.max_concurrency, cache=cache)
