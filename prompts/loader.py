"""Prompt files: YAML documents with Jinja2 templates, rendered in strict mode.

A prompt file (shipped in ``prompts/`` or the user's own, ``--prompt FILE``) is a YAML mapping::

    name: qa_choice
    description: what the prompt is for
    system: |      # optional: Jinja2 template of the system message
      ...
    user: |        # optional: Jinja2 template of the user message
      ...

At least one of ``system`` / ``user`` is given. Templates are rendered with
:class:`jinja2.StrictUndefined`: a variable the caller did not pass is a :class:`PromptError`
naming the file and the variable, never an empty string in the prompt. Rendered text is stripped
of leading/trailing blank lines, so YAML block scalars give clean messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, ValidationError

from vidagent.core.errors import ConfigError
from vidagent.core.records import ChatMessage, Record


class PromptError(ConfigError):
    """A prompt file cannot be read, is malformed, or needs a variable that was not given."""


class PromptTemplate(Record):
    """One prompt file: Jinja2 sources of its messages and where it came from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    description: str = ""
    system: str | None = None
    user: str | None = None
    source: str = Field(default="", description="File the template was read from")

    def render(self, variables: Mapping[str, Any]) -> list[ChatMessage]:
        """The chat messages of this template with ``variables`` filled in (strictly)."""
        messages = []
        for role in ("system", "user"):
            source = getattr(self, role)
            if source is not None:
                text = render_text(source, variables, where=f"{self.source or self.name} ({role})")
                messages.append(ChatMessage(role=role, content=text))
        return messages


def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_text(source: str, variables: Mapping[str, Any], *, where: str = "template") -> str:
    """Render one Jinja2 template string strictly; errors become one :class:`PromptError` line."""
    import jinja2

    try:
        text = _environment().from_string(source).render(**variables)
    except jinja2.UndefinedError as exc:
        raise PromptError(f"prompt {where}: {exc.message} (variable not provided)") from None
    except jinja2.TemplateError as exc:
        raise PromptError(f"prompt {where}: {type(exc).__name__}: {exc}") from None
    return text.strip("\n")


def resolve_prompt_path(name_or_path: str | Path) -> Path:
    """A shipped prompt by name (``qa_choice`` or ``qa_choice.yaml``) or a path to a file."""
    from vidagent.prompts import list_prompts, prompt_path

    candidate = Path(name_or_path).expanduser()
    if candidate.is_file():
        return candidate
    name = str(name_or_path)
    shipped = list_prompts()
    for option in (name, f"{name}.yaml"):
        if option in shipped:
            return Path(prompt_path(option))
    raise PromptError(
        f"prompt {name_or_path}: no such file and not a shipped prompt (shipped: {shipped})"
    )


def load_prompt(name_or_path: str | Path) -> PromptTemplate:
    """Read and validate a prompt file (shipped name or path); templates are syntax-checked."""
    import jinja2
    import yaml

    path = resolve_prompt_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise PromptError(f"prompt file {path}: cannot read it ({exc})") from None
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0]
        raise PromptError(f"prompt file {path}: not valid YAML ({first})") from None
    if not isinstance(data, dict):
        raise PromptError(f"prompt file {path}: must be a YAML mapping with 'system'/'user' keys")
    data.setdefault("name", path.stem)
    try:
        template = PromptTemplate(**data, source=str(path))
    except (ValidationError, TypeError) as exc:
        detail = (
            "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            if isinstance(exc, ValidationError)
            else str(exc)
        )
        raise PromptError(f"prompt file {path}: {detail}") from None
    if template.system is None and template.user is None:
        raise PromptError(f"prompt file {path}: needs a 'system' or 'user' template")
    env = _environment()
    for role in ("system", "user"):
        source = getattr(template, role)
        if source is not None:
            try:
                env.parse(source)
            except jinja2.TemplateSyntaxError as exc:
                raise PromptError(
                    f"prompt file {path} ({role}): line {exc.lineno}: {exc.message}"
                ) from None
    return template


def render_prompt(name_or_path: str | Path, variables: Mapping[str, Any]) -> list[ChatMessage]:
    """:func:`load_prompt` then :meth:`PromptTemplate.render`."""
    return load_prompt(name_or_path).render(variables)
