"""Prompt templates shipped as package data (YAML rendered with Jinja2, StrictUndefined)."""

from __future__ import annotations

from importlib import resources


def prompt_path(name: str) -> str:
    """Filesystem path of the shipped prompt file ``name`` (e.g. ``"mcq.yaml"``)."""
    ref = resources.files(__name__).joinpath(name)
    if not ref.is_file():
        available = sorted(p.name for p in resources.files(__name__).iterdir() if p.is_file())
        raise FileNotFoundError(f"no shipped prompt {name!r}; available: {available}")
    return str(ref)


def list_prompts() -> list[str]:
    """Names of the prompt files shipped with vidagent."""
    return sorted(
        p.name
        for p in resources.files(__name__).iterdir()
        if p.is_file() and p.name.endswith((".yaml", ".yml"))
    )
