"""The chat agent against the real vLLM server (tool calls enabled), through a recording transport:
what went back to the model is read from the next request on the wire. The model is random, so
these tests check structure: tool messages, history, streaming, the REPL's commands."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from llm_support import tiny_model_dir, vllm_url
from pydantic import Field
from rich.console import Console
from test_tasks_support import Perceived, perceived

from vidagent.chat import (
    ChatAgent,
    TextChunk,
    Toolbox,
    ToolCallEvent,
    ToolResultEvent,
    VideoContext,
)
from vidagent.chat.toolbox import MomentArgs, ToolArgs, describe_moment
from vidagent.cli.chat_repl import HELP, run_repl
from vidagent.core.errors import ConfigError
from vidagent.llm.openai_backend import normalize_url
from vidagent.tasks import TaskOptions

__all__ = ["perceived", "tiny_model_dir", "vllm_url"]

SYSTEM = "You answer questions about a video."


class AtArgs(ToolArgs):
    t: int = Field(ge=0, le=7)


def at(video: VideoContext, args: AtArgs) -> str:
    """Segment at t s."""
    return describe_moment(video, MomentArgs(time_s=args.t, window_s=0.1))


class Recorder(httpx.BaseTransport):
    """Forwards to the server and records the chat request bodies."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.bodies: list[dict[str, Any]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/chat/completions"):
            self.bodies.append(json.loads(request.read()))
        return self.inner.handle_request(request)


@pytest.fixture
def wire(vllm_url: str) -> Iterator[tuple[Any, Recorder]]:
    from langchain_openai import ChatOpenAI

    recorder = Recorder()
    http = httpx.Client(transport=recorder)
    model = ChatOpenAI(
        base_url=normalize_url(vllm_url),
        api_key="EMPTY",  # type: ignore[arg-type]
        model="tiny",
        temperature=0.0,
        max_retries=0,
        http_client=http,
    )
    yield model, recorder
    http.close()


def make_agent(p: Perceived, model: Any, **kwargs: Any) -> ChatAgent:
    video = VideoContext(
        timeline=p.timeline,
        store=p.store,
        query_embedder=p.query_embedder,
        text_embedder=p.text_embedder,
        context=TaskOptions(k=0, max_timeline_chars=120),
        overview_chars=120,
    )
    kwargs.setdefault("max_tokens", 24)
    # One short tool keeps the prompts (and the tiny model's CPU time) small.
    return ChatAgent(model, Toolbox(video, [at]), system=SYSTEM, **kwargs)


def test_a_forced_tool_call_runs_and_its_result_goes_back_to_the_model(
    perceived: Perceived, wire: tuple[Any, Recorder]
) -> None:
    model, recorder = wire
    agent = make_agent(perceived, model, max_rounds=1, tool_choice="at", max_tokens=24)
    events = list(agent.stream("What happens at 2 s?"))
    calls = [e for e in events if isinstance(e, ToolCallEvent)]
    results = [e for e in events if isinstance(e, ToolResultEvent)]
    assert [c.name for c in calls] == ["at"] and len(results) == 1
    first, second = recorder.bodies
    assert first["stream"] is True and first["tools"][0]["function"]["name"] == "at"
    assert first["tool_choice"]["function"]["name"] == "at"
    assert "tools" not in second  # the last round must answer in text
    sent = second["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool"]
    assert sent[2]["tool_calls"][0]["id"] == calls[0].id == sent[3]["tool_call_id"]
    assert sent[3]["content"] == results[0].content
    if not results[0].error:  # a truncated random call is an error message instead
        assert results[0].content == agent.toolbox.run("at", calls[0].arguments)  # type: ignore[arg-type]
        assert "<seg_" in results[0].content
    assert [type(m).__name__ for m in agent.history] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
    ]


def test_an_invalid_tool_call_goes_back_as_an_error_not_a_crash(
    perceived: Perceived, wire: tuple[Any, Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    from langchain_core.messages import AIMessage

    model, recorder = wire
    agent = make_agent(perceived, model, max_rounds=1)
    real = agent._generate
    bad = AIMessage(
        content="",
        tool_calls=[
            {"name": "at", "args": {"t": -3}, "id": "c1"},
            {"name": "rm", "args": {}, "id": "c2"},
        ],
        invalid_tool_calls=[{"name": "at", "args": "{t: 1", "id": "c3", "error": "bad JSON"}],
    )
    rounds = iter([lambda _: iter([bad]), real])
    monkeypatch.setattr(agent, "_generate", lambda with_tools: next(rounds)(with_tools))
    events = list(agent.stream("Describe 1 s."))
    results = [e for e in events if isinstance(e, ToolResultEvent)]
    assert [r.id for r in results] == ["c1", "c2", "c3"] and all(r.error for r in results)
    assert "t: Input should be" in results[0].content and "unknown tool 'rm'" in results[1].content
    assert "bad JSON" in results[2].content
    (body,) = recorder.bodies  # only the real second round reached the server
    tool_messages = [m for m in body["messages"] if m["role"] == "tool"]
    assert [m["content"] for m in tool_messages] == [r.content for r in results]
    assert all(m["content"].startswith("error: ") for m in tool_messages)


def test_history_is_kept_across_turns_and_reset_clears_it(
    perceived: Perceived, wire: tuple[Any, Recorder]
) -> None:
    model, recorder = wire
    agent = make_agent(perceived, model, max_rounds=0)
    first = agent.ask("First question?")
    agent.ask("Second question?")
    sent = recorder.bodies[1]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[0]["content"] == SYSTEM and sent[1]["content"] == "First question?"
    assert sent[2]["content"] == first and sent[3]["content"] == "Second question?"
    assert len(agent.history) == 4
    agent.reset()
    assert agent.history == []
    agent.ask("Third?")
    assert [m["role"] for m in recorder.bodies[2]["messages"]] == ["system", "user"]


def test_the_answer_streams_in_chunks(perceived: Perceived, wire: tuple[Any, Recorder]) -> None:
    model, recorder = wire
    agent = make_agent(perceived, model, max_rounds=0, max_tokens=16)
    chunks = [e.text for e in agent.stream("Tell me about the video.") if isinstance(e, TextChunk)]
    assert len(chunks) > 1 and recorder.bodies[0]["stream"] is True
    assert agent.history[-1].content == "".join(chunks)


def test_an_interrupted_turn_leaves_no_trace_in_the_history(
    perceived: Perceived, wire: tuple[Any, Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    model, _ = wire
    agent = make_agent(perceived, model, max_rounds=0)
    agent.ask("Kept?")

    def interrupted(with_tools: bool) -> Iterator[Any]:
        yield TextChunk("partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(agent, "_generate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        list(agent.stream("Dropped?"))
    assert agent.history[0].content == "Kept?" and len(agent.history) == 2


def scripted(lines: list[str | type[BaseException]]) -> Any:
    feed = iter(lines)

    def read_line(prompt: str) -> str:
        item = next(feed)
        if isinstance(item, type):
            raise item
        return item

    return read_line


def test_the_repl_runs_commands_and_a_question_then_quits(
    perceived: Perceived, wire: tuple[Any, Recorder]
) -> None:
    model, recorder = wire
    agent = make_agent(perceived, model, max_rounds=0)
    out = io.StringIO()
    console = Console(file=out, width=200)
    lines: list[str | type[BaseException]] = ["/help", "/timeline", "What happens?", "/reset"]
    code = run_repl(agent, console, scripted([*lines, "/quit"]), timeline="TIMELINE-TEXT")
    text = out.getvalue()
    assert code == 0 and HELP.splitlines()[1] in text and "TIMELINE-TEXT" in text
    assert len(recorder.bodies) == 1 and "(conversation cleared)" in text
    assert agent.history == []


def test_the_repl_survives_ctrl_c_during_an_answer_and_exits_on_eof_or_two_ctrl_c(
    perceived: Perceived, wire: tuple[Any, Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    model, _ = wire
    agent = make_agent(perceived, model, max_rounds=0)

    def interrupted(with_tools: bool) -> Iterator[Any]:
        yield TextChunk("partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(agent, "_generate", interrupted)
    out = io.StringIO()
    console = Console(file=out, width=200)
    assert run_repl(agent, console, scripted(["Question?", EOFError])) == 0
    assert "(stopped)" in out.getvalue() and agent.history == []
    ctrl_c = scripted([KeyboardInterrupt, "/nope", KeyboardInterrupt, KeyboardInterrupt])
    assert run_repl(agent, console, ctrl_c) == 0
    assert "unknown command '/nope'" in out.getvalue()


def test_a_failed_turn_is_reported_and_the_session_goes_on(
    perceived: Perceived, wire: tuple[Any, Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    model, _ = wire
    agent = make_agent(perceived, model, max_rounds=0)

    def rejected(with_tools: bool) -> Iterator[Any]:
        raise RuntimeError("Error code: 400 - maximum context length is 512 tokens")
        yield  # pragma: no cover

    monkeypatch.setattr(agent, "_generate", rejected)
    out = io.StringIO()
    console = Console(file=out, width=200)
    assert run_repl(agent, console, scripted(["Question?", "/help", "/quit"])) == 0
    text = out.getvalue()
    assert "error:" in text and "maximum context length" in text
    assert HELP.splitlines()[1] in text  # the next command still ran
    assert agent.history == []


def test_chat_without_llm_url_is_one_clear_error(tmp_path: Any) -> None:
    import typer
    from typer.testing import CliRunner

    from vidagent.cli.chat import NO_URL, chat

    app = typer.Typer()
    app.command("chat")(chat)
    app.command("other")(lambda: None)
    result = CliRunner().invoke(app, ["chat", str(tmp_path / "video.mp4")])
    assert isinstance(result.exception, ConfigError) and str(result.exception) == NO_URL
    assert "--enable-auto-tool-choice --tool-call-parser hermes" in NO_URL
