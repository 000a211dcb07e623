"""Chat about a video: a tool-using agent (LangChain tool calling) over one perceived timeline.

:mod:`.tools` holds the tools (plain functions with pydantic arguments) and the :class:`Toolbox`
that validates and runs a model's tool calls; :mod:`.agent` the multi-turn :class:`ChatAgent`;
:mod:`.repl` the terminal loop. LangChain is imported only inside functions.
"""

from agent.chat.agent import (
    ChatAgent,
    ChatEvent,
    TextChunk,
    ToolCallEvent,
    ToolResultEvent,
    system_prompt,
)
from agent.chat.tools import ALL_TOOLS, Tool, Toolbox, ToolCallError, VideoContext

__all__ = [
    "ALL_TOOLS",
    "ChatAgent",
    "ChatEvent",
    "TextChunk",
    "Tool",
    "ToolCallError",
    "ToolCallEvent",
    "ToolResultEvent",
    "Toolbox",
    "VideoContext",
    "system_prompt",
]
