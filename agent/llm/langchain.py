"""LangChain adapter: a ``ChatOpenAI`` on the same OpenAI-compatible endpoint, for the chat agent.

This is the only module that touches LangChain, and only inside the function: the rest of the code
base passes :class:`~vidagent.llm.config.LLMConfig` around, never a LangChain type.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from vidagent.core.errors import ConfigError, MissingDependencyError
from vidagent.llm.config import LLMConfig
from vidagent.llm.errors import LLMConnectionError, LLMRequestError
from vidagent.llm.openai_backend import normalize_url

if TYPE_CHECKING:
    from langchain_core.language_models.chat_models import BaseChatModel


def make_chat_model(config: LLMConfig) -> BaseChatModel:
    """A LangChain chat model for the first URL of ``config`` (model auto-detected if unset)."""
    try:
        from langchain_openai import ChatOpenAI
    except ImportError as err:
        raise MissingDependencyError("langchain-openai", "the chat agent") from err
    if not config.urls:
        raise ConfigError("the LangChain chat model needs a server URL (--url)")
    base_url = normalize_url(config.urls[0])
    model = config.model or first_served_model(base_url, config.api_key, config.timeout_s)
    return ChatOpenAI(
        base_url=base_url,
        api_key=config.api_key,  # type: ignore[arg-type]
        model=model,
        temperature=config.temperature,
        timeout=config.timeout_s,
        max_retries=config.max_retries,
    )


def first_served_model(base_url: str, api_key: str, timeout_s: float) -> str:
    """The first model ``GET {base_url}/models`` lists."""
    try:
        reply = httpx.get(
            f"{base_url}/models",
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout_s,
        )
        reply.raise_for_status()
        models = [m["id"] for m in reply.json()["data"]]
    except (httpx.HTTPError, KeyError, ValueError) as err:
        raise LLMConnectionError([base_url], 1, f"cannot list models: {err}") from err
    if not models:
        raise LLMRequestError(f"LLM server at {base_url} serves no model")
    return str(models[0])
