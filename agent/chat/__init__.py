"""Chat about a video: a tool-using agent (LangChain tool calling) over one perceived timeline.

:mod:`.tools` holds the tools (plain functions with pydantic arguments) and the :class:`Toolbox`
that validates and runs a model's tool calls; :mod:`.agent` the multi-turn :class:`ChatAgent`;
:mod:`.repl` the terminal loop. LangChain is imported only inside functions.
"""

from vidagent.chat.agent import (
    ChatAgent,
    ChatEvent,
    TextChunk,
    ToolCallEvent,
    ToolResultEvent,
    system_prompt,
)
from vidagent.chat.toolbox import ALL_TOOLS, ChatTool, Toolbox, ToolCallError, VideoContext

__all__ = [
    "ALL_TOOLS",
    "ChatAgent",
    "ChatEvent",
    "ChatTool",
    "TextChunk",
    "ToolCallError",
    "ToolCallEvent",
    "ToolResultEvent",
    "Toolbox",
    "VideoContext",
    "system_prompt",
]
