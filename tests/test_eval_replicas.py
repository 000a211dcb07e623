"""``eval run`` over several vLLM replicas: requests are spread by least outstanding requests, and
when one replica is stopped mid-run it is taken out, its requests are retried on the other and
every sample still completes (two real vLLM servers; requests counted per replica on the wire).
How long a broken replica stays out, and what counts as broken, is checked first with an
``httpx.MockTransport`` and a fake clock."""

from __future__ import annotations

import asyncio
import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from llm_support import spare_vllm_server, tiny_model_dir, vllm_url
from typer.testing import CliRunner

from vidagent.cli.eval import app
from vidagent.evals import benchmark
from vidagent.evals.runner import (
    RESULTS,
    RunConfig,
    SampleResult,
    Solver,
    check_config,
    run_samples,
)
from vidagent.evals.sources import CaptionsFile
from vidagent.llm import LLMClient, RetryPolicy
from vidagent.llm.errors import LLMConnectionError
from vidagent.llm.openai_backend import OpenAIBackend, normalize_url
from vidagent.llm.types import LLMRequest
from vidagent.testing.vllm_server import VLLMServer

__all__ = ["spare_vllm_server", "tiny_model_dir", "vllm_url"]

REAL = Path(__file__).resolve().parent / "data"
ROWS = 24


class PerReplica(httpx.AsyncBaseTransport):
    """Counts chat requests sent to each host:port, and the ones answered 200."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.sent: Counter[str] = Counter()
        self.answered: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("/chat/completions"):
            return await self.inner.handle_async_request(request)
        where = f"{request.url.host}:{request.url.port}"
        self.sent[where] += 1
        response = await self.inner.handle_async_request(request)
        if response.status_code == 200:
            self.answered[where] += 1
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def host_port(url: str) -> str:
    parsed = httpx.URL(normalize_url(url))
    return f"{parsed.host}:{parsed.port}"


def reply(text: str, finish: str = "stop") -> httpx.Response:
    return httpx.Response(200, json={
        "id": "c", "object": "chat.completion", "created": 0, "model": "tiny",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": finish}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    })  # fmt: skip


def ask(backend: OpenAIBackend) -> str:
    return asyncio.run(backend.generate(LLMRequest.of("hi"))).text


def mocked(hosts: list[str], handler: Any, **kwargs: Any) -> OpenAIBackend:
    """A backend over ``http://<host>`` for each host, served by ``handler``, no retries."""
    kwargs.setdefault("retry", RetryPolicy(max_retries=0))
    urls = [f"http://{h}" for h in hosts]
    return OpenAIBackend(urls, model="tiny", transport=httpx.MockTransport(handler), **kwargs)


def test_a_replica_answering_5xx_is_taken_out_without_spending_retries() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "broken.test":  # HTTP server up, engine dead
            return httpx.Response(500, json={"message": "EngineDeadError"})
        return reply("up")

    backend = mocked(["broken.test", "up.test"], handler)
    assert [ask(backend) for _ in range(10)] == ["up"] * 10
    broken, up = backend.stats()
    assert (broken.sent, broken.failed) == (1, 1)  # tried once, then out for the cool-down
    assert (up.sent, up.failed) == (10, 0)


def test_an_aborted_answer_of_a_stopping_server_fails_over() -> None:
    # vLLM answers 200 with finish_reason "abort" and the partial text for requests in flight
    # when it receives SIGTERM: that text is no answer
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "stopping.test":
            return reply("A par", finish="abort")
        return reply("up")

    backend = mocked(["stopping.test", "up.test"], handler)
    assert [ask(backend) for _ in range(4)] == ["up"] * 4
    stopping, up = backend.stats()
    assert (stopping.sent, stopping.failed, up.sent) == (1, 1, 4)
    single = mocked(["stopping.test"], handler, retry=RetryPolicy(max_retries=1, base_delay_s=0))
    with pytest.raises(LLMConnectionError, match="aborted the request"):
        ask(single)


def test_cooldown_doubles_per_outage_and_one_answer_brings_the_replica_back() -> None:
    now = [0.0]
    state = {"down": True}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "flaky.test" and state["down"]:
            raise httpx.ConnectError("connection refused", request=request)
        return reply(request.url.host)

    backend = mocked(
        ["flaky.test", "up.test"], handler, cooldown_s=2.0, max_cooldown_s=8.0, clock=lambda: now[0]
    )
    probes = []
    for t in (0.0, 1.0, 2.5, 6.0, 7.0, 14.0, 15.5, 22.0, 23.6):
        now[0] = t
        assert ask(backend) == "up.test"
        probes.append(backend.stats()[0].sent)
    # out for 2 s after t=0, 4 s after t=2.5, 8 s after t=7, 8 s (the cap) after t=15.5
    assert probes == [1, 1, 2, 2, 3, 3, 4, 4, 5]
    state["down"] = False
    now[0] = 40.0
    # back in rotation (it has had the fewer requests, so the ties go to it)
    assert [ask(backend) for _ in range(3)] == ["flaky.test"] * 3
    assert backend.stats()[0].failed == 5


@pytest.fixture
def slice_files(tmp_path: Path) -> tuple[Path, Path]:
    src = REAL / "nextqa" / "val.csv"
    if not src.exists():
        pytest.fail(f"real data {src} is absent")
    with src.open(newline="") as fh:
        reader = csv.DictReader(fh)
        rows = [r for _, r in zip(range(ROWS), reader, strict=False)]
        fields = reader.fieldnames or []
    ann = tmp_path / f"val{ROWS}.csv"
    with ann.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    segments = [
        {"start": 0, "end": 4, "caption": "a child plays with a dog"},
        {"start": 4, "end": 9, "caption": "a man picks up the ball"},
    ]
    cap = tmp_path / "captions.json"
    cap.write_text(json.dumps({r["video"]: segments for r in rows}))
    return ann, cap


@pytest.mark.slow
def test_a_replica_stopped_mid_run_loses_no_sample(
    vllm_url: str,
    spare_vllm_server: VLLMServer,
    slice_files: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    ann, cap = slice_files
    samples = benchmark("nextqa").load_samples(ann)
    config = RunConfig(task="nextqa", annotations=str(ann), source=f"captions:{cap}",
                       max_timeline_chars=120, max_concurrency=4)  # fmt: skip
    run_dir = tmp_path / "run"
    check_config(run_dir, config, force=False)
    wire = PerReplica()
    backend = OpenAIBackend(
        [vllm_url, spare_vllm_server.url],
        transport=wire,
        retry=RetryPolicy(max_retries=1, base_delay_s=0.1),
        cooldown_s=60.0,
    )
    llm = LLMClient(backend, max_concurrency=4)
    solve = Solver(llm, config)
    live, dead = host_port(vllm_url), host_port(spare_vllm_server.url)
    seen: list[SampleResult] = []
    before: dict[str, Counter[str]] = {}

    def stop_spare_after_six(result: SampleResult) -> None:
        seen.append(result)
        if len(seen) == 6:
            before["sent"], before["answered"] = Counter(wire.sent), Counter(wire.answered)
            spare_vllm_server.stop()

    try:
        done = run_samples(samples, source=CaptionsFile(cap), solve=solve, run_dir=run_dir,
                           workers=4, on_result=stop_spare_after_six)  # fmt: skip
    finally:
        llm.close()
    assert not spare_vllm_server.alive()
    lines = [json.loads(x) for x in (run_dir / RESULTS).read_text().splitlines()]
    assert sorted(r["key"] for r in lines) == sorted(s.key for s in samples)
    assert all(r.ok for r in done.values()), [r.error for r in done.values() if not r.ok]
    # least-outstanding balancing: with 4 in flight, both replicas were busy before the stop
    assert before["sent"][live] >= 2 and before["sent"][dead] >= 2, before
    # every sample was answered once in all; after the stop the stopped replica answered at most
    # the requests it already had in flight (a stopping vLLM may still finish one)
    assert sum(wire.answered.values()) == ROWS
    in_flight = before["sent"][dead] - before["answered"][dead]
    assert wire.answered[dead] - before["answered"][dead] <= in_flight
    # the dead replica is out: only the requests picked before its first failure went to it
    assert wire.sent[dead] - before["sent"][dead] <= 4
    stats = {host_port(s.url): s for s in backend.stats()}
    assert stats[dead].failed >= 1 and stats[live].failed == 0


@pytest.mark.slow
def test_cli_reports_requests_per_replica(
    vllm_url: str,
    spare_vllm_server: VLLMServer,
    slice_files: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    ann, cap = slice_files
    out = tmp_path / "cli-run"
    result = CliRunner().invoke(app, [
        "run", "nextqa", "--annotations", str(ann), "--captions", str(cap), "--out", str(out),
        "--llm-url", vllm_url, "--llm-url", spare_vllm_server.url, "--max-timeline-chars", "120",
        "--no-cache", "--no-progress", "--max-concurrency", "4", "--limit", "8",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    replica_lines = [x for x in result.output.splitlines() if x.startswith("replica ")]
    assert len(replica_lines) == 2, result.output
    sent = [int(x.split(": ")[1].split()[0]) for x in replica_lines]
    # 8 chats + the start-up probe (GET /v1/models) of each replica
    assert sum(sent) == 8 + 2 and min(sent) > 1, replica_lines
