"""One error hierarchy for the whole project.

Every error a user can cause (bad video, bad config, unreachable server) is a subclass of
:class:`VidagentError`; the CLI prints its message on one line and exits non-zero. Messages name the
offending value (file, URL, option) and the cause.
"""

from __future__ import annotations


class VidagentError(Exception):
    """Base class of every error vidagent raises on purpose."""


class ConfigError(VidagentError):
    """A setting, option or config file is invalid."""


class MissingDependencyError(VidagentError):
    """An optional dependency is needed for this feature but is not installed."""

    def __init__(self, package: str, feature: str, extra: str | None = None) -> None:
        hint = f"pip install 'vidagent[{extra}]'" if extra else f"pip install {package}"
        super().__init__(
            f"{feature} needs the '{package}' package, which is not installed ({hint})"
        )
        self.package = package


class VideoError(VidagentError):
    """A video cannot be used. Subclasses say why; the message names the file."""

    def __init__(self, path: object, cause: str) -> None:
        super().__init__(f"{path}: {cause}")
        self.path = str(path)
        self.cause = cause


class VideoNotFoundError(VideoError):
    """The path does not exist or is not a regular file."""


class NotAVideoError(VideoError):
    """The file is not a media container any decoder understands."""


class NoVideoStreamError(VideoError):
    """The container opens but has no decodable video stream (e.g. audio only)."""


class EmptyVideoError(VideoError):
    """The video stream has zero frames."""


class CorruptVideoError(VideoError):
    """The file is truncated or damaged: it opened, but frames could not be decoded."""


class StoreError(VidagentError):
    """The perception store is unusable (bad home directory, incompatible schema)."""
