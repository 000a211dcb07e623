"""Task flows against the real vLLM server (tiny Llama, 4096-token context), through a recording
HTTP transport: what was sent is read from the wire, and one request can be made to fail.

Most tests use small Z and short timelines to keep the CPU time down; one runs the benchmark's
Z=20, K=5 with an Ego4D-size taxonomy and the default prompt.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from llm_support import tiny_model_dir, vllm_url
from test_tasks_support import Perceived, assert_candidates, big_taxonomy, perceived, shown_tokens

from vidagent.llm import LLMClient, RetryPolicy
from vidagent.llm.openai_backend import OpenAIBackend
from vidagent.prompts.loader import load_prompt
from vidagent.tasks import (
    AnticipateSpec,
    TaskDeps,
    TaskOptions,
    answer_question,
    anticipate_actions,
    localize_query,
    run_task,
)
from vidagent.tools.actions import Taxonomy

__all__ = ["perceived", "tiny_model_dir", "vllm_url"]

CONTEXT = TaskOptions(k=1, max_timeline_chars=160)


class Recorder(httpx.AsyncBaseTransport):
    """Forwards to the server, records chat request bodies, fails the chat calls in ``fail``."""

    def __init__(self, fail: set[int] | None = None) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.bodies: list[dict[str, Any]] = []
        self.fail = fail or set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/chat/completions"):
            await request.aread()
            self.bodies.append(json.loads(request.content))
            if len(self.bodies) in self.fail:
                return httpx.Response(400, json={"error": {"message": "injected failure"}})
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
def recorded(vllm_url: str) -> Iterator[tuple[LLMClient, Recorder]]:
    recorder = Recorder()
    backend = OpenAIBackend([vllm_url], transport=recorder, retry=RetryPolicy(max_retries=0))
    client = LLMClient(backend)
    yield client, recorder
    client.close()


def user_text(body: dict[str, Any]) -> str:
    return "\n".join(m["content"] for m in body["messages"])


def test_choice_answer_and_open_answer_on_the_server(
    perceived: Perceived, recorded: tuple[LLMClient, Recorder]
) -> None:
    llm, recorder = recorded
    options = ["an onion", "a door"]
    result = answer_question(
        perceived.timeline,
        "What is cut?",
        options,
        llm=llm,
        bank=perceived.bank,
        context=CONTEXT,
        samples=3,
        **perceived.embeds(),
    )
    assert result.answer in options and sum(result.votes.values()) == 3
    body = recorder.bodies[-1]
    assert body["structured_outputs"] == {"choice": ["A", "B"]} and body["n"] == 3
    sent = user_text(body)
    assert result.run.examples and all(e.input in sent for e in result.run.examples)
    assert all(t in sent for t in shown_tokens(perceived.timeline, result.run.segments_shown))
    assert sent == "\n".join(m.content for m in result.run.calls[0].messages)

    result = answer_question(
        perceived.timeline,
        "What happens?",
        llm=llm,
        context=CONTEXT,
        max_answer_chars=16,
        **perceived.embeds(),
    )
    tokens = shown_tokens(perceived.timeline, result.run.segments_shown)
    schema = recorder.bodies[-1]["structured_outputs"]["json"]
    assert schema["properties"]["segments"]["items"]["enum"] == tokens
    assert result.citations and all(c.token in tokens for c in result.citations)


def test_anticipation_palm_schedule_reports_a_failed_request(
    perceived: Perceived, vllm_url: str
) -> None:
    recorder = Recorder(fail={2})
    llm = LLMClient(
        OpenAIBackend([vllm_url], transport=recorder, retry=RetryPolicy(max_retries=0)),
        max_concurrency=1,  # requests reach the server in order: the 2nd one fails
    )
    tax = Taxonomy.basic()
    spec = AnticipateSpec(
        tuple(tax.verbs), tuple(tax.nouns), z=3, k=3, schedule="examples", max_context_chars=30
    )
    try:  # the spec run directly by the pipeline: the same run as anticipate_actions(...)
        result = run_task(
            spec, perceived.timeline, TaskDeps(llm, bank=perceived.bank, options=TaskOptions(k=1))
        )
    finally:
        llm.close()
    assert len(recorder.bodies) == 3
    failed = [c for c in result.candidates if c.error]
    assert len(failed) == 1 and "injected failure" in (failed[0].error or "")
    assert result.run.calls[1].error and llm.usage.failed_calls == 1
    served = [c for c in result.candidates if not c.error]
    assert all(c.valid for c in served)
    assert_candidates(served, tax.verbs, tax.nouns, 3)
    # PALM: each candidate's prompt shows its own example
    shown = [
        [e for e in ("LTAMARK1", "LTAMARK2", "LTAMARK3") if e in user_text(b)]
        for b in recorder.bodies
    ]
    assert sorted(x for s in shown for x in s) == ["LTAMARK1", "LTAMARK2", "LTAMARK3"]
    assert all(len(s) == 1 for s in shown)


def test_server_accepts_an_ego4d_size_taxonomy(
    perceived: Perceived, recorded: tuple[LLMClient, Recorder], tmp_path: Path
) -> None:
    llm, recorder = recorded
    verbs, nouns = big_taxonomy()
    short = tmp_path / "short.yaml"  # the user's own prompt file
    short.write_text("user: |\n  Observed: {{ observed }}\n  Next {{ z }} actions:\n")
    result = anticipate_actions(
        perceived.timeline,
        verbs=verbs,
        nouns=nouns,
        llm=llm,
        prompt=load_prompt(short),
        z=2,
        k=2,
    )
    schema = recorder.bodies[-1]["structured_outputs"]["json"]
    item = schema["properties"]["actions"]["items"]["properties"]
    assert len(item["verb"]["enum"]) == 117 and len(item["noun"]["enum"]) == 521
    assert len(result.candidates) == 2 and result.valid_rate == 1.0
    assert_candidates(result.candidates, verbs, nouns, 2)


def test_localize_on_the_server(perceived: Perceived, recorded: tuple[LLMClient, Recorder]) -> None:
    llm, recorder = recorded
    result = localize_query(
        perceived.timeline,
        "a door opens",
        llm=llm,
        bank=perceived.bank,
        context=CONTEXT,
        **perceived.embeds(),
    )
    assert 0.0 <= result.start < result.end <= perceived.timeline.video.duration + 1e-6
    body = recorder.bodies[-1]
    tokens = shown_tokens(perceived.timeline, result.run.segments_shown)
    assert body["structured_outputs"]["json"]["properties"]["end"]["enum"] == tokens
    assert "LOCMARK1" in user_text(body)


def test_ego4d_lta_size_z20_k5_with_the_default_prompt(
    perceived: Perceived, recorded: tuple[LLMClient, Recorder]
) -> None:
    llm, recorder = recorded
    verbs, nouns = big_taxonomy()
    result = anticipate_actions(
        perceived.timeline,
        verbs=verbs,
        nouns=nouns,
        llm=llm,
        bank=perceived.bank,
        context=TaskOptions(k=1, max_timeline_chars=600),
        z=20,
        k=5,
    )
    schema = recorder.bodies[-1]["structured_outputs"]["json"]["properties"]["actions"]
    assert schema["minItems"] == schema["maxItems"] == 20
    assert len(result.candidates) == 5 and result.valid_rate == 1.0
    assert all(c.valid for c in result.candidates)
    assert_candidates(result.candidates, verbs, nouns, 20)
