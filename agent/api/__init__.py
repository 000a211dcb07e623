"""vidagent's Python API: perceive a video, ask about it, anticipate its actions, localize a moment.

The ``vidagent`` commands are a thin shell over these functions, with the same defaults::

    from vidagent.api import LLMSettings, PerceptionConfig, ask, perceive

    timeline = perceive("kitchen.mp4", PerceptionConfig(device="cuda"))
    result = ask("kitchen.mp4", "What is cut?", ["onion", "bread"],
                 llm=LLMSettings(urls=["http://127.0.0.1:8000/v1"]))
    metrics = score("nextqa", "val.csv", "predictions.json")

Perception is cached by the video's content in the store of the settings (``$VIDAGENT_HOME``);
progress is reported to ``on_progress`` callbacks, never drawn here.
"""

from vidagent.api.chat import ChatSettings, build_chat_agent, served_chat_model
from vidagent.api.config import LLMSettings, PerceptionConfig
from vidagent.api.demo import DemoEvent, DemoResults, run_demo, tiny_setup
from vidagent.api.deps import Deps, build_deps
from vidagent.api.evals import benchmarks, score
from vidagent.api.perception import build_tools, open_store, perceive, perceive_many
from vidagent.api.tasks import anticipate, ask, localize
from vidagent.tasks import AnswerResult, AnticipationResult, LocalizationResult
from vidagent.tools.perceive import PerceiveSummary, ProgressEvent

__all__ = [
    "AnswerResult",
    "AnticipationResult",
    "ChatSettings",
    "DemoEvent",
    "DemoResults",
    "Deps",
    "LLMSettings",
    "LocalizationResult",
    "PerceiveSummary",
    "PerceptionConfig",
    "ProgressEvent",
    "anticipate",
    "ask",
    "benchmarks",
    "build_chat_agent",
    "build_deps",
    "build_tools",
    "localize",
    "open_store",
    "perceive",
    "perceive_many",
    "run_demo",
    "score",
    "served_chat_model",
    "tiny_setup",
]
