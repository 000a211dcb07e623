"""The options several commands share, declared once, and their conversion into the API's configs.

Each shared option is one ``Annotated`` type here (flag, help, metavar), so a flag means the same
and reads the same in every command. Groups of them (:data:`PERCEPTION`, :data:`LLM`,
:data:`EXAMPLES`, :data:`CHAT`) are added to a command by :func:`with_options`: the command's
signature gains the group's options and its function receives one typed value per group instead
(``perception: PerceptionConfig``, ``llm: LLMSettings``, ...), built and checked before the command
body runs, so a bad option is one :class:`~vidagent.core.errors.ConfigError` line before any model
loads. ``vidagent.cli.eval`` and ``vidagent.cli.index`` use the same types for the same flags.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from vidagent.api.chat import ChatSettings
from vidagent.api.config import LLMSettings, PerceptionConfig, validated
from vidagent.core.errors import ConfigError
from vidagent.tasks.steps import DEFAULT_LLM_MODEL
from vidagent.tools.captioner import DEFAULT_CAPTIONER
from vidagent.tools.taxonomy import BUILTIN_NAME
from vidagent.tools.visual_embedder import DEFAULT_VISUAL_MODEL

F = TypeVar("F", bound=Callable[..., Any])

# --- single options (plain Annotated types: `name: SomeOpt = default`) -----------------------

VideoArg = Annotated[
    Path,
    typer.Argument(help="A video file (mp4, webm, mkv, avi, ...).", metavar="VIDEO"),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the result as JSON instead of text.", metavar="")
]
SecondsOpt = Annotated[
    float | None,
    typer.Option(
        "--seconds",
        "-s",
        min=0.1,
        help="Fixed segment length in seconds (default 2).",
        metavar="SECONDS",
        show_default=False,
    ),
]
ShotsOpt = Annotated[
    bool,
    typer.Option("--shots", help="Cut at shot boundaries instead of fixed windows.", metavar=""),
]
MaxShotSecondsOpt = Annotated[
    float,
    typer.Option(
        "--max-shot-seconds",
        min=0.0,
        help="With --shots: split shots longer than this (0: never).",
        metavar="SECONDS",
    ),
]
CaptionerOpt = Annotated[
    str,
    typer.Option(
        "--captioner",
        help="Captioning VLM: hub id or local folder (with --captioner-url: the served name).",
        metavar="MODEL",
    ),
]
CaptionerUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--captioner-url",
        help="Caption with a VLM served by vLLM at this OpenAI-compatible URL "
        "(http://host:8000/v1); --captioner is then the served model name.",
        metavar="URL",
    ),
]
EmbedderOpt = Annotated[
    str,
    typer.Option(
        "--embedder",
        help="CLIP/SigLIP model for segment embeddings and zero-shot actions.",
        metavar="MODEL",
    ),
]
TaxonomyOpt = Annotated[
    Path | None,
    typer.Option(
        "--taxonomy",
        help='Verb/noun taxonomy JSON ({"verbs": [...], "nouns": [...]}) for the action labels; '
        "anticipate predicts within it. 'demo': the demo's built-in one.",
        metavar="FILE",
    ),
]
TinyOpt = Annotated[
    bool,
    typer.Option(
        "--tiny",
        help="Offline, on the demo's tiny random-weight models (perception, the in-process LLM, "
        "--taxonomy demo): checks the install and the pipeline, not the quality of answers.",
        metavar="",
    ),
]
DeviceOpt = Annotated[
    str,
    typer.Option("--device", help="Perception device: auto, cpu, cuda, cuda:N.", metavar="DEVICE"),
]
LLMUrlOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--llm-url",
        help="OpenAI-compatible (vLLM) server URL, e.g. http://127.0.0.1:8000/v1; repeat for "
        "replicas.",
        metavar="URL",
        show_default=False,
    ),
]
LLMModelOpt = Annotated[
    str,
    typer.Option(
        "--llm-model",
        help="LLM hub id or local folder (with --llm-url: the served model name).",
        metavar="MODEL",
    ),
]
LLMAdapterOpt = Annotated[
    Path | None,
    typer.Option(
        "--llm-adapter",
        help="LoRA adapter folder (vidagent train llm) applied to --llm-model in process; for a "
        "server, start it with --lora-modules NAME=DIR and pass --llm-model NAME instead.",
        metavar="DIR",
        show_default=False,
    ),
]
BankOpt = Annotated[
    Path | None,
    typer.Option(
        "--bank",
        help="Example bank folder (vidagent index build) for in-context examples.",
        metavar="DIR",
    ),
]
ExamplesOpt = Annotated[
    int | None,
    typer.Option(
        "--examples",
        min=0,
        help="In-context examples per prompt (needs --bank; default 4 with one).",
        metavar="N",
        show_default=False,
    ),
]
PromptOpt = Annotated[
    Path | None,
    typer.Option("--prompt", help="Your own prompt template (YAML, see prompts/).", metavar="FILE"),
]
MaxTimelineCharsOpt = Annotated[
    int,
    typer.Option(
        "--max-timeline-chars",
        min=40,
        help="Timeline text budget of a prompt, in characters.",
        metavar="N",
    ),
]
MaxRoundsOpt = Annotated[
    int, typer.Option("--max-rounds", min=0, help="Tool-call rounds per answer.", metavar="N")
]
ToolChoiceOpt = Annotated[
    str,
    typer.Option(
        "--tool-choice",
        help="auto: the model decides; required: every tool round must call a tool "
        "(helps small models; the answer comes after --max-rounds rounds).",
        metavar="auto|required",
    ),
]
ToolsOpt = Annotated[
    str | None,
    typer.Option(
        "--tools",
        help="Comma-separated tools the agent may use (default: all of "
        "timeline_overview, describe_moment, find_moments, actions_between, localize, "
        "answer_choice); fewer tools leave more context to a small model.",
        metavar="NAMES",
        show_default=False,
    ),
]
MaxTokensOpt = Annotated[
    int, typer.Option("--max-tokens", min=1, help="Longest model reply (tokens).", metavar="N")
]
TemperatureOpt = Annotated[
    float,
    typer.Option(
        "--temperature", min=0.0, help="Sampling temperature of the chat.", metavar="FLOAT"
    ),
]


# --- groups ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Opt:
    """One option of a group: the parameter name, its Annotated type and its default."""

    name: str
    annotation: Any
    default: Any


@dataclass(frozen=True)
class OptionGroup:
    """Options that together make one typed value, passed to the command as ``target``."""

    target: str
    options: tuple[Opt, ...]
    build: Callable[[dict[str, Any]], Any]

    def extend(self, *options: Opt) -> OptionGroup:
        """The same group with more options (their values go to the same ``build``)."""
        return OptionGroup(self.target, (*self.options, *options), self.build)


def tiny_models() -> dict[str, Path]:
    """The demo's tiny models (built once under the vidagent home, then reused)."""
    from vidagent.api.demo import demo_models
    from vidagent.core.settings import load_settings

    return demo_models(load_settings().models_dir)


def perception_config(values: dict[str, Any]) -> PerceptionConfig:
    """The :class:`PerceptionConfig` of the perception options (and ``perceive``'s own)."""
    if values.pop("tiny", False):
        models = tiny_models()
        if values.get("captioner_url") is None and values["captioner"] == DEFAULT_CAPTIONER:
            values["captioner"] = str(models["blip"])
        if values["embedder"] == DEFAULT_VISUAL_MODEL:
            values["embedder"] = str(models["clip"])
        values["taxonomy"] = values.get("taxonomy") or Path(BUILTIN_NAME)
    if values.get("shots") and values.get("seconds") is not None:
        raise ConfigError("--seconds and --shots are exclusive: choose one segmentation")
    off = [
        name for name in ("captions", "actions", "embeddings") if values.pop(f"no_{name}", False)
    ]
    if len(off) == 3:
        raise ConfigError("--no-captions, --no-actions and --no-embeddings leave nothing to run")
    values.update({name: False for name in off})
    return validated(PerceptionConfig, **values)


def llm_settings(values: dict[str, Any]) -> LLMSettings:
    urls, model = list(values["llm_url"] or []), values["llm_model"]
    if values.get("tiny") and not urls and model == DEFAULT_LLM_MODEL:
        model = str(tiny_models()["llm"])
    return validated(LLMSettings, urls=urls, model=model, adapter=values.get("llm_adapter"))


@dataclass(frozen=True)
class Examples:
    """The example bank to load (None: none) and the examples per prompt (None: the default)."""

    bank: Path | None
    count: int | None
    prompt: Path | None


def examples_of(values: dict[str, Any]) -> Examples:
    bank, count = values["bank"], values["examples"]
    if count and bank is None:
        raise ConfigError(
            f"--examples needs --bank (an example bank folder from vidagent index build); "
            f"got --examples {count} and no --bank"
        )
    if bank is not None and not bank.is_dir():
        raise ConfigError(f"--bank {bank}: not a directory")
    return Examples(bank, count, values["prompt"])


@dataclass(frozen=True)
class ChatOptions:
    """The chat's own options; :meth:`settings` adds the examples and the prompt."""

    max_rounds: int
    tool_choice: str
    tools: list[str] | None
    max_tokens: int
    temperature: float
    max_timeline_chars: int

    def settings(self, examples: Examples) -> ChatSettings:
        return validated(
            ChatSettings,
            max_rounds=self.max_rounds,
            tool_choice=self.tool_choice,
            tools=self.tools,
            max_tokens=self.max_tokens,
            examples=examples.count,
            max_timeline_chars=self.max_timeline_chars,
            prompt=examples.prompt,
        )


def tool_names(tool_choice: str, tools: str | None) -> list[str] | None:
    """Check ``--tool-choice`` and ``--tools``; the tool names in the order given (None: all)."""
    from vidagent.chat import ALL_TOOLS

    if tool_choice not in ("auto", "required"):
        raise ConfigError(f"--tool-choice {tool_choice!r}: choose 'auto' or 'required'")
    names = [t.strip() for t in (tools or "").split(",") if t.strip()] or None
    known = [fn.__name__ for fn in ALL_TOOLS]
    for name in names or []:
        if name not in known:
            raise ConfigError(f"--tools: unknown tool {name!r}; the tools are: {', '.join(known)}")
    return names


def chat_options(values: dict[str, Any]) -> ChatOptions:
    values["tools"] = tool_names(values["tool_choice"], values["tools"])
    return ChatOptions(**values)


PERCEPTION = OptionGroup(
    "perception",
    (
        Opt("captioner", CaptionerOpt, DEFAULT_CAPTIONER),
        Opt("captioner_url", CaptionerUrlOpt, None),
        Opt("embedder", EmbedderOpt, DEFAULT_VISUAL_MODEL),
        Opt("taxonomy", TaxonomyOpt, None),
        Opt("seconds", SecondsOpt, None),
        Opt("device", DeviceOpt, "auto"),
        Opt("tiny", TinyOpt, False),
    ),
    perception_config,
)
"""How videos are perceived: ``perception: PerceptionConfig`` (``perceive`` extends it)."""

LLM = OptionGroup(
    "llm",
    (
        Opt("llm_url", LLMUrlOpt, None),
        Opt("llm_model", LLMModelOpt, DEFAULT_LLM_MODEL),
        Opt("llm_adapter", LLMAdapterOpt, None),
        Opt("tiny", TinyOpt, False),
    ),
    llm_settings,
)
"""Where the task LLM runs: ``llm: LLMSettings``."""

EXAMPLES = OptionGroup(
    "examples",
    (
        Opt("bank", BankOpt, None),
        Opt("examples", ExamplesOpt, None),
        Opt("prompt", PromptOpt, None),
    ),
    examples_of,
)
"""In-context examples and the prompt template: ``examples: Examples``."""

CHAT = OptionGroup(
    "chat_options",
    (
        Opt("max_rounds", MaxRoundsOpt, 4),
        Opt("tool_choice", ToolChoiceOpt, "auto"),
        Opt("tools", ToolsOpt, None),
        Opt("max_tokens", MaxTokensOpt, 1024),
        Opt("temperature", TemperatureOpt, 0.0),
        Opt("max_timeline_chars", MaxTimelineCharsOpt, 4000),
    ),
    chat_options,
)
"""The chat agent's options (``chat`` and ``serve``): ``chat_options: ChatOptions``."""


def with_options(*groups: OptionGroup) -> Callable[[F], F]:
    """Give a command the options of ``groups``: its parameter named like a group's ``target``
    is replaced by the group's options, and receives the value the group builds from them."""

    def decorate(command: F) -> F:
        signature = inspect.signature(command, eval_str=True)
        targets = {group.target for group in groups}
        missing = targets - set(signature.parameters)
        if missing:
            raise TypeError(f"{command.__name__} has no parameter for {sorted(missing)}")
        kw = inspect.Parameter.KEYWORD_ONLY
        params = [
            p.replace(kind=kw) for p in signature.parameters.values() if p.name not in targets
        ]
        shared = {o.name: o for group in groups for o in group.options}  # one flag, once
        params += [
            inspect.Parameter(o.name, kw, default=o.default, annotation=o.annotation)
            for o in shared.values()
        ]

        @functools.wraps(command)
        def run(**values: Any) -> Any:
            given = {name: values.pop(name) for name in shared}
            for group in groups:
                values[group.target] = group.build({o.name: given[o.name] for o in group.options})
            return command(**values)

        run.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in params}
        return run  # type: ignore[return-value]

    return decorate
