"""vidagent's LLM layer: one client (cache, concurrency limit, usage, batching) over backends.

Backends: an OpenAI-compatible HTTP client for ``vllm serve`` (:mod:`.openai_backend`), the
in-process vLLM engine (:mod:`.vllm_backend`) and transformers on CPU (:mod:`.hf_backend`). Build
one from settings with :func:`build_backend`. Heavy libraries load only when a backend is used.
"""

from vidagent.llm.backend import LLMBackend, LLMClient
from vidagent.llm.cache import ResponseCache, cache_key
from vidagent.llm.config import LLMConfig, build_backend
from vidagent.llm.errors import (
    LLMConnectionError,
    LLMError,
    LLMOutputError,
    LLMRequestError,
    LLMTimeoutError,
    ServerStartError,
    StructuredOutputUnsupportedError,
)
from vidagent.llm.retry import RetryPolicy
from vidagent.llm.types import (
    ChatMessage,
    LLMRequest,
    LLMResponse,
    SamplingParams,
    StructuredOutput,
    Usage,
    UsageMeter,
    UsageTotals,
)

__all__ = [
    "ChatMessage",
    "LLMBackend",
    "LLMClient",
    "LLMConfig",
    "LLMConnectionError",
    "LLMError",
    "LLMOutputError",
    "LLMRequest",
    "LLMRequestError",
    "LLMResponse",
    "LLMTimeoutError",
    "ResponseCache",
    "RetryPolicy",
    "SamplingParams",
    "ServerStartError",
    "StructuredOutput",
    "StructuredOutputUnsupportedError",
    "Usage",
    "UsageMeter",
    "UsageTotals",
    "build_backend",
    "cache_key",
]
