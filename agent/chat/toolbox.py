"""The chat agent's tools over one perceived video.

Each tool is a plain function ``fn(video, args) -> str``: ``video`` is the :class:`VideoContext`
(timeline and the dependencies the tasks need), ``args`` a pydantic model whose JSON schema and the
function's docstring are what the LLM sees. Results are short text that cite segments as
``<seg_N> [start-end s]`` so the model can cite them back. :class:`Toolbox` validates a tool call's
arguments and runs it; a bad call is a :class:`ToolCallError` (the agent sends it back to the
model), never a crash.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vidagent.core.errors import VidagentError
from vidagent.core.records import Segment, Timeline
from vidagent.tasks.render import RenderOptions, render_segment
from vidagent.tasks.steps import TaskOptions, segment_relevance, timeline_text


class ToolCallError(VidagentError):
    """A tool call the model made cannot run: unknown tool, invalid arguments, or a failed task."""


class ToolArgs(BaseModel):
    """Base of tool arguments: a key the schema does not name is an error the model sees."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class VideoContext:
    """One perceived video and what the tools need to reason over it."""

    timeline: Timeline
    llm: Any = None
    store: Any = None
    query_embedder: Any = None
    text_embedder: Any = None
    bank: Any = None
    context: TaskOptions = field(default_factory=TaskOptions)
    overview_chars: int = 2000
    captioner: Any = None
    """The perception captioner, for finer captions on demand (None: not offered)."""


LINE = RenderOptions(max_actions=2, action_scores=False)


def cite(segment: Segment) -> str:
    """``<seg_N> [start-end s]``."""
    return f"{segment.token} [{segment.start:.1f}-{segment.end:.1f} s]"


def _lines(segments: Sequence[Segment]) -> str:
    return "\n".join(render_segment(s, LINE) for s in segments)


class NoArgs(ToolArgs):
    pass


def timeline_overview(video: VideoContext, args: NoArgs) -> str:
    """The whole video as a timeline: one line per segment (long videos are shortened)."""
    options = video.context.model_copy(update={"max_timeline_chars": video.overview_chars})
    return timeline_text(video.timeline, options).text


class MomentArgs(ToolArgs):
    time_s: float = Field(ge=0, description="Time in seconds")
    window_s: float = Field(default=4.0, gt=0, le=120, description="Window around it, seconds")
    fine: bool = Field(
        default=False, description="Also re-caption the window every 0.5 s (slower, more detail)"
    )


FINE_STEP_S = 0.5
FINE_WINDOW_S = 16.0
"""Finer captions cover at most this much of the window, centred on ``time_s``."""


def describe_moment(video: VideoContext, args: MomentArgs) -> str:
    """Captions and actions of the segments around a time in seconds; fine=true re-captions
    the window at a finer rate."""
    low, high = args.time_s - args.window_s / 2, args.time_s + args.window_s / 2
    segments = [s for s in video.timeline.segments if s.end > low and s.start < high]
    if not segments:
        segments = [video.timeline.segment_at(args.time_s)]
    text = _lines(segments)
    if args.fine:
        text += "\n" + _finer(video, args.time_s, min(args.window_s, FINE_WINDOW_S))
    return text


def _finer(video: VideoContext, time_s: float, window_s: float) -> str:
    from pathlib import Path

    from vidagent.tools.recaption import recaption

    if video.captioner is None or video.store is None:
        raise ToolCallError("describe_moment: fine=true needs the captioner, which is not loaded")
    info = video.timeline.video
    steps = recaption(
        Path(info.path),
        info,
        time_s - window_s / 2,
        time_s + window_s / 2,
        captioner=video.captioner,
        store=video.store,
        step_s=FINE_STEP_S,
    )
    lines = [f"[{c.start:.1f}-{c.end:.1f} s] {'; '.join(c.texts)}" for c in steps]
    return f"finer captions (every {FINE_STEP_S} s):\n" + "\n".join(lines)


class FindArgs(ToolArgs):
    text: str = Field(min_length=1, max_length=300, description="What to look for")
    k: int = Field(default=3, ge=1, le=10, description="How many moments")


def find_moments(video: VideoContext, args: FindArgs) -> str:
    """The k moments most similar to a text (visual and caption similarity), best first."""
    relevance = segment_relevance(
        video.timeline,
        args.text,
        store=video.store,
        query_embedder=video.query_embedder,
        text_embedder=video.text_embedder,
    )
    if relevance.combined is None:
        raise ToolCallError("find_moments: no embeddings are available for this video")
    order = sorted(range(len(relevance.combined)), key=lambda i: -relevance.combined[i])  # type: ignore[index]
    segments = video.timeline.segments
    return "\n".join(
        f"{render_segment(segments[i], LINE)} (score {relevance.combined[i]:.2f})"
        for i in order[: args.k]
    )


class SpanArgs(ToolArgs):
    start_s: float = Field(ge=0, description="Start, seconds")
    end_s: float = Field(ge=0, description="End, seconds")


def actions_between(video: VideoContext, args: SpanArgs) -> str:
    """The action labels of the segments between two times in seconds."""
    if args.end_s < args.start_s:
        raise ToolCallError(f"actions_between: end_s {args.end_s} is before start_s {args.start_s}")
    segments = [
        s for s in video.timeline.segments if s.end > args.start_s and s.start <= args.end_s
    ]
    if not segments:
        return f"no segment between {args.start_s:.1f} and {args.end_s:.1f} s"
    return "\n".join(
        f"{cite(s)} {'; '.join(a.text for a in s.actions[:3]) or '(no actions)'}" for s in segments
    )


class QueryArgs(ToolArgs):
    query: str = Field(min_length=1, max_length=300, description="What to find, in words")


def _task_kwargs(video: VideoContext, name: str) -> dict[str, Any]:
    if video.llm is None:
        raise ToolCallError(f"{name}: no LLM client is configured for this tool")
    return {
        "llm": video.llm,
        "bank": video.bank,
        "store": video.store,
        "query_embedder": video.query_embedder,
        "text_embedder": video.text_embedder,
        "context": video.context,
    }


def localize(video: VideoContext, args: QueryArgs) -> str:
    """When something happens: the start and end of the span that matches the query."""
    from vidagent.tasks.localize import localize_query

    result = localize_query(video.timeline, args.query, **_task_kwargs(video, "localize"))
    return (
        f"{result.start_token} to {result.end_token} "
        f"[{result.start:.1f}-{result.end:.1f} s] for {args.query!r}"
    )


class ChoiceArgs(ToolArgs):
    question: str = Field(min_length=1, max_length=500)
    options: list[str] = Field(min_length=2, max_length=10, description="Answer options")


def answer_choice(video: VideoContext, args: ChoiceArgs) -> str:
    """Answer a multiple-choice question about the video: picks one of the options."""
    from vidagent.tasks.answer import answer_question

    result = answer_question(
        video.timeline, args.question, args.options, **_task_kwargs(video, "answer_choice")
    )
    cited = ", ".join(f"{c.token} [{c.start:.1f}-{c.end:.1f} s]" for c in result.citations)
    return f"answer: {result.letter}. {result.answer} (segments: {cited or 'none'})"


ToolFn = Callable[[VideoContext, Any], str]


@dataclass(frozen=True)
class ChatTool:
    """A tool function with its name, description (the docstring) and argument model."""

    name: str
    description: str
    args: type[ToolArgs]
    fn: ToolFn

    @classmethod
    def from_function(cls, fn: ToolFn) -> ChatTool:
        hints = get_type_hints(fn)
        args = hints["args"]
        doc = inspect.getdoc(fn) or fn.__name__
        description = " ".join(doc.split("\n\n")[0].split())
        return cls(name=fn.__name__, description=description, args=args, fn=fn)

    def schema(self) -> dict[str, Any]:
        """The OpenAI ``tools`` entry of this tool."""
        parameters = self.args.model_json_schema()
        parameters.pop("title", None)
        for prop in parameters.get("properties", {}).values():
            prop.pop("title", None)
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": parameters,
            },
        }


ALL_TOOLS: tuple[ToolFn, ...] = (
    timeline_overview,
    describe_moment,
    find_moments,
    actions_between,
    localize,
    answer_choice,
)
"""Every tool, in the order the model sees them."""


class Toolbox:
    """The tools of one chat session over one video, or over several named videos.

    Over several videos every tool takes one more argument, ``video``: one of the names (an enum in
    the schema the model sees), and runs on that video.
    """

    def __init__(
        self,
        video: VideoContext | Mapping[str, VideoContext],
        tools: Sequence[ToolFn] = ALL_TOOLS,
    ) -> None:
        videos = dict(video) if isinstance(video, Mapping) else {"video": video}
        if not videos:
            raise ValueError("Toolbox needs at least one video")
        self.videos: dict[str, VideoContext] = videos
        self.tools = {t.name: t for t in (ChatTool.from_function(fn) for fn in tools)}

    @property
    def video(self) -> VideoContext:
        """The (first) video."""
        return next(iter(self.videos.values()))

    @property
    def several(self) -> bool:
        """True when the tools choose among several videos."""
        return len(self.videos) > 1

    def schemas(self) -> list[dict[str, Any]]:
        schemas = [tool.schema() for tool in self.tools.values()]
        if self.several:
            for schema in schemas:
                parameters = schema["function"]["parameters"]
                parameters.setdefault("properties", {})["video"] = {
                    "type": "string",
                    "enum": list(self.videos),
                    "description": "Which video",
                }
                parameters["required"] = ["video", *parameters.get("required", [])]
        return schemas

    def run(self, name: str, arguments: Mapping[str, Any] | None) -> str:
        """Validate ``arguments`` and run tool ``name``; :class:`ToolCallError` if it cannot."""
        tool = self.tools.get(name)
        if tool is None:
            raise ToolCallError(f"unknown tool {name!r}; the tools are: {', '.join(self.tools)}")
        values = dict(arguments or {})
        video = self.video
        if self.several:
            which = values.pop("video", None)
            if which not in self.videos:
                raise ToolCallError(
                    f"invalid arguments for {name}: video: must be one of "
                    f"{', '.join(map(repr, self.videos))} (got {which!r})"
                )
            video = self.videos[which]
        try:
            args = tool.args.model_validate(values)
        except ValidationError as err:
            detail = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or '(arguments)'}: {e['msg']}" for e in err.errors()
            )
            raise ToolCallError(f"invalid arguments for {name}: {detail}") from None
        try:
            return tool.fn(video, args)
        except ToolCallError:
            raise
        except (VidagentError, ValueError, KeyError) as err:
            raise ToolCallError(f"{name} failed: {type(err).__name__}: {err}") from err
