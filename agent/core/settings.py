"""vidagent's settings: where it keeps its perception store, models and run logs.

Settings come from (highest priority first) keyword overrides passed to :func:`load_settings`,
environment variables prefixed ``VIDAGENT_`` (``VIDAGENT_HOME``), then defaults. The environment is
read when :func:`load_settings` is called, never at import time, so tests and the CLI can change it
freely. Unknown keyword overrides are errors (``extra="forbid"``); unrelated ``VIDAGENT_*``
environment variables (``VIDAGENT_TEST_VLLM_URL``...) are ignored, because other parts of the
project read their own.

Invalid values raise :class:`~vidagent.core.errors.ConfigError` with one readable line that names
the setting, its environment variable and the offending value, so the CLI can print it as is.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vidagent.core.errors import ConfigError

ENV_PREFIX = "VIDAGENT_"


def default_home() -> Path:
    """The per-user cache directory (``~/.cache/vidagent`` on Linux); computed when called."""
    return Path(platformdirs.user_cache_dir("vidagent"))


class VidagentSettings(BaseSettings):
    """Validated settings. Build them with :func:`load_settings` to get :class:`ConfigError`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    home: Path = Field(
        default_factory=default_home,
        description="Root of everything vidagent writes (store, models, runs); env VIDAGENT_HOME",
    )

    @field_validator("home", mode="before")
    @classmethod
    def _reject_empty(cls, value: Any) -> Any:
        # Path("") is ".", which would silently put the store in whatever the current directory is.
        if isinstance(value, str | os.PathLike) and not os.fspath(value).strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("home")
    @classmethod
    def _absolute_directory(cls, value: Path) -> Path:
        # Absolute at load time, so a later chdir() cannot move the store.
        home = Path(os.path.abspath(value.expanduser()))
        if home.exists() and not home.is_dir():
            raise ValueError("exists and is not a directory")
        return home

    @property
    def store_dir(self) -> Path:
        """Content-addressed perception results (:class:`vidagent.store.PerceptionStore` root)."""
        return self.home / "store"

    @property
    def models_dir(self) -> Path:
        """Downloaded or converted model weights."""
        return self.home / "models"

    @property
    def runs_dir(self) -> Path:
        """Per-run logs and outputs (agent traces, eval results)."""
        return self.home / "runs"


def _describe(error: Any) -> str:
    """One ``ValidationError`` entry as ``setting (env VAR) = 'value': reason``."""
    loc = ".".join(str(part) for part in error.get("loc", ())) or "<settings>"
    reason = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    value = error.get("input")
    if error.get("type") == "extra_forbidden":
        return (
            f"unknown setting {loc!r} = {value!r} (known: {sorted(VidagentSettings.model_fields)})"
        )
    env = f"{ENV_PREFIX}{loc.upper()}"
    return f"setting {loc} (env {env}) = {value!r}: {reason}"


def load_settings(**overrides: Any) -> VidagentSettings:
    """Read settings from the environment now, with ``overrides`` taking precedence.

    Raises :class:`ConfigError` (one line naming each bad setting and value) instead of pydantic's
    multi-line ``ValidationError``.
    """
    try:
        return VidagentSettings(**overrides)
    except ValidationError as exc:
        details = "; ".join(_describe(err) for err in exc.errors())
        raise ConfigError(f"invalid vidagent settings: {details}") from exc
