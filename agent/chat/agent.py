"""A multi-turn chat agent about one video, with LangChain tool calling.

Each turn sends the system prompt (``prompts/chat_system.yaml``: the video's duration, segment count
and timeline) and the conversation so far to a chat model bound to the :class:`Toolbox`'s tools.
When the model calls tools, they run and their results go back as ``ToolMessage``s, up to
``max_rounds`` rounds; after that the model must answer without tools. A call the toolbox cannot run
(unknown tool, invalid arguments, unparsable JSON, failed task) goes back to the model as an error
``ToolMessage`` so it can try again; it never ends the turn. The answer is streamed as
:class:`TextChunk` events. LangChain types stay inside ``vidagent.chat``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidagent.chat.toolbox import Toolbox, ToolCallError
from vidagent.prompts.loader import PromptTemplate, load_prompt
from vidagent.tasks.steps import timeline_text

if TYPE_CHECKING:
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessage, BaseMessage, ToolMessage


@dataclass(frozen=True)
class TextChunk:
    """A piece of the model's text, in the order it arrived."""

    text: str


@dataclass(frozen=True)
class ToolCallEvent:
    """The model asked for a tool."""

    id: str
    name: str
    arguments: dict[str, Any] | str


@dataclass(frozen=True)
class ToolResultEvent:
    """What went back to the model for one tool call (``error``: the call could not run)."""

    id: str
    name: str
    content: str
    error: bool


ChatEvent = TextChunk | ToolCallEvent | ToolResultEvent


def system_prompt(toolbox: Toolbox, template: PromptTemplate | str | Path | None = None) -> str:
    """The rendered system message of ``template`` (default ``chat_system``) for the video(s).

    Variables: ``duration``, ``num_segments`` and ``timeline`` (over several videos: their total
    and one titled timeline per video, sharing the overview's character budget) and ``videos``
    (the names).
    """
    if not isinstance(template, PromptTemplate):
        template = load_prompt(template or "chat_system")
    videos = toolbox.videos
    texts, duration, segments = [], 0.0, 0
    for name, video in videos.items():
        budget = video.overview_chars // len(videos)
        options = video.context.model_copy(update={"max_timeline_chars": budget})
        text = timeline_text(video.timeline, options).text
        length = video.timeline.video.duration
        count = len(video.timeline.segments)
        texts.append(
            f"Video {name!r} ({length:.1f}s, {count} segments):\n{text}"
            if toolbox.several
            else text
        )
        duration += length
        segments += count
    variables = {
        "duration": f"{duration:.1f}s",
        "num_segments": segments,
        "timeline": "\n\n".join(texts),
        "videos": list(videos),
    }
    messages = template.render(variables)
    return "\n\n".join(m.content for m in messages if m.role == "system")


class ChatAgent:
    """Conversation state and the tool-calling loop of one chat session.

    ``tool_choice`` (``"auto"``, ``"required"``, ``"any"`` or a tool's name) applies to the tool
    rounds; the last round (after ``max_rounds``) never offers tools, so a turn ends in text.
    """

    def __init__(
        self,
        model: BaseChatModel,
        toolbox: Toolbox,
        *,
        system: str | None = None,
        max_rounds: int = 4,
        max_tokens: int | None = None,
        tool_choice: str | None = None,
    ) -> None:
        self.model = model
        self.toolbox = toolbox
        self.system = system if system is not None else system_prompt(toolbox)
        self.max_rounds = max_rounds
        self.max_tokens = max_tokens
        self.history: list[BaseMessage] = []
        self._bound = model.bind_tools(toolbox.schemas(), tool_choice=tool_choice)

    def reset(self) -> None:
        """Forget the conversation (the video and its tools stay)."""
        self.history.clear()

    def messages(self) -> list[BaseMessage]:
        """What the next request sends: the system prompt, then the conversation."""
        from langchain_core.messages import SystemMessage

        return [SystemMessage(content=self.system), *self.history]

    def ask(self, text: str) -> str:
        """One turn, returning the final answer's text."""
        return "".join(e.text for e in self.stream(text) if isinstance(e, TextChunk))

    def stream(self, text: str) -> Iterator[ChatEvent]:
        """One turn as events; an interrupted turn (Ctrl-C) leaves the history as it was."""
        from langchain_core.messages import HumanMessage

        before = len(self.history)
        self.history.append(HumanMessage(content=text))
        try:
            for round_ in range(self.max_rounds + 1):
                with_tools = round_ < self.max_rounds
                reply: AIMessage | None = None
                for event in self._generate(with_tools):
                    if isinstance(event, TextChunk):
                        yield event
                    else:
                        reply = event
                assert reply is not None
                self.history.append(reply)
                calls = self._calls(reply)
                if not calls:
                    return
                for call in calls:
                    yield ToolCallEvent(call["id"], call["name"], call["args"])
                    message = self.execute(call)
                    self.history.append(message)
                    yield ToolResultEvent(
                        call["id"], call["name"], str(message.content), message.status == "error"
                    )
        except BaseException:
            del self.history[before:]
            raise

    def _generate(self, with_tools: bool) -> Iterator[TextChunk | AIMessage]:
        """Stream one model reply: its text chunks, then the whole message."""
        from langchain_core.messages import AIMessage

        runnable = self._bound if with_tools else self.model
        kwargs: dict[str, Any] = {}
        if self.max_tokens is not None:
            kwargs["max_tokens"] = self.max_tokens
        total: Any = None
        for chunk in runnable.stream(self.messages(), **kwargs):
            total = chunk if total is None else total + chunk
            if isinstance(chunk.content, str) and chunk.content:
                yield TextChunk(chunk.content)
        if total is None:
            yield AIMessage(content="")
            return
        yield AIMessage(
            content=total.content,
            tool_calls=list(total.tool_calls) if with_tools else [],
            invalid_tool_calls=list(total.invalid_tool_calls) if with_tools else [],
            id=total.id,
            response_metadata=total.response_metadata,
        )

    @staticmethod
    def _calls(reply: AIMessage) -> list[dict[str, Any]]:
        """The reply's tool calls, valid ones and unparsable ones, each with an id."""
        calls: list[dict[str, Any]] = []
        for i, call in enumerate(reply.tool_calls):
            calls.append({"id": call.get("id") or f"call_{i}", "name": call["name"], **call})
        for i, bad in enumerate(reply.invalid_tool_calls):
            calls.append(
                {
                    "id": bad.get("id") or f"invalid_{i}",
                    "name": bad.get("name") or "",
                    "args": bad.get("args") or "",
                    "error": bad.get("error") or "the arguments are not a JSON object",
                }
            )
        for entry in calls:
            entry["id"] = entry["id"] or "call"
        return calls

    def execute(self, call: dict[str, Any]) -> ToolMessage:
        """Run one tool call; any failure is an error ``ToolMessage`` for the model, not a raise."""
        from langchain_core.messages import ToolMessage

        name = str(call.get("name") or "")
        call_id = str(call.get("id") or "call")
        args = call.get("args")
        try:
            if call.get("error") is not None or not isinstance(args, dict):
                raise ToolCallError(
                    f"invalid arguments for {name or 'a tool'}: {call.get('error') or ''} "
                    f"(got {json.dumps(args)[:200]}); arguments must be a JSON object"
                )
            content = self.toolbox.run(name, args)
            status = "success"
        except ToolCallError as err:
            content, status = f"error: {err}", "error"
        return ToolMessage(content=content, tool_call_id=call_id, name=name, status=status)
