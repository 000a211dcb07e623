"""Throughput of short guided-choice requests against one vLLM server, three ways.

1. ceiling: a raw saturating client — ``openai.AsyncOpenAI`` + ``asyncio.gather`` under a semaphore,
   no wrapper at all;
2. vidagent: :class:`vidagent.llm.LLMClient` over :class:`vidagent.llm.openai_backend.OpenAIBackend`
   (``generate_many``; response cache off, so every request reaches the server);
3. sequential: a one-at-a-time loop with the synchronous ``openai`` client (what peer systems do).

Every way sends the same number of requests (4-way guided choice, ``max_tokens=8``, greedy) with
prompts unique to the way and round, so vLLM's prefix cache favours none of them; every answer is
checked to be one of the choices. The concurrent ways run ``--rounds`` times, interleaved, and the
best round counts (the machine may be shared). Prints req/s per way and the ratios
vidagent/ceiling (goal >= 0.9) and vidagent/sequential.

Without ``--url`` it builds the tiny random Llama and starts its own server with
:mod:`vidagent.testing.vllm_server` (needs the vLLM venv: ``--vllm-python`` or
``VIDAGENT_VLLM_PYTHON``, default ``.venv-vllm/bin/python``).

    .venv/bin/python bench/llm_throughput.py [--url http://127.0.0.1:8000] [--requests 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from vidagent.llm import LLMClient, LLMRequest, LLMResponse, StructuredOutput
from vidagent.llm.openai_backend import OpenAIBackend, normalize_url
from vidagent.testing.tiny_llm import build_tiny_llama
from vidagent.testing.vllm_server import start_vllm_server

CHOICES = ["take", "put", "open", "close"]
REPO = Path(__file__).resolve().parents[1]


class WayResult(BaseModel):
    """One way's best round."""

    way: str
    requests: int
    seconds: float
    valid: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def prompt(way: str, round_: int, i: int) -> str:
    return f"[{way} {round_}] Clip {i}: the person reaches for the cup. What happens next?"


async def run_ceiling(
    base_url: str, model: str, n: int, concurrency: int, round_: int
) -> WayResult:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=120) as http:
        client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key="EMPTY",
            max_retries=0,
            http_client=http,  # type: ignore[arg-type]
        )
        semaphore = asyncio.Semaphore(concurrency)

        async def one(i: int) -> str:
            async with semaphore:
                reply = await client.chat.completions.create(
                    model=model,
                    messages=[{"role": "user", "content": prompt("ceiling", round_, i)}],
                    temperature=0.0,
                    max_tokens=8,
                    extra_body={"structured_outputs": {"choice": CHOICES}},
                )
                return reply.choices[0].message.content or ""

        start = time.perf_counter()
        texts = await asyncio.gather(*(one(i) for i in range(n)))
        seconds = time.perf_counter() - start
    return WayResult(
        way="ceiling (raw asyncio + openai)",
        requests=n,
        seconds=seconds,
        valid=sum(t in CHOICES for t in texts),
    )


async def run_vidagent(
    base_url: str, model: str, n: int, concurrency: int, round_: int
) -> WayResult:
    backend = OpenAIBackend([base_url], model=model, max_connections=concurrency, timeout_s=120)
    client = LLMClient(backend, max_concurrency=concurrency)
    choice = StructuredOutput.from_choices(CHOICES)
    requests = [
        LLMRequest.of(prompt("vidagent", round_, i), structured=choice, max_tokens=8)
        for i in range(n)
    ]
    start = time.perf_counter()
    results = await client.generate_many(requests)
    seconds = time.perf_counter() - start
    await client.aclose()
    valid = sum(isinstance(r, LLMResponse) and r.text in CHOICES for r in results)
    return WayResult(way="vidagent LLMClient", requests=n, seconds=seconds, valid=valid)


def run_sequential(base_url: str, model: str, n: int) -> WayResult:
    client = openai.OpenAI(base_url=base_url, api_key="EMPTY", max_retries=0, timeout=120)
    valid = 0
    start = time.perf_counter()
    for i in range(n):
        reply = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": prompt("sequential", 0, i)}],
            temperature=0.0,
            max_tokens=8,
            extra_body={"structured_outputs": {"choice": CHOICES}},
        )
        valid += (reply.choices[0].message.content or "") in CHOICES
    seconds = time.perf_counter() - start
    client.close()
    return WayResult(way="sequential (one at a time)", requests=n, seconds=seconds, valid=valid)


def best(results: list[WayResult]) -> WayResult:
    return max(results, key=lambda r: r.rps)


def bench(
    base_url: str, requests: int, concurrency: int, rounds: int, say: Callable[[str], None]
) -> list[WayResult]:
    model = openai.OpenAI(base_url=base_url, api_key="EMPTY").models.list().data[0].id
    say(f"server {base_url}, model {model}; warming up")
    asyncio.run(run_ceiling(base_url, model, 64, concurrency, round_=-1))
    ceiling, ours = [], []
    for round_ in range(rounds):
        say(f"round {round_ + 1}/{rounds}: ceiling")
        ceiling.append(asyncio.run(run_ceiling(base_url, model, requests, concurrency, round_)))
        say(f"round {round_ + 1}/{rounds}: vidagent")
        ours.append(asyncio.run(run_vidagent(base_url, model, requests, concurrency, round_)))
    say("sequential")
    sequential = run_sequential(base_url, model, requests)
    return [best(ceiling), best(ours), sequential]


def report(results: list[WayResult], concurrency: int, console: Console) -> None:
    table = Table(title=f"{results[0].requests} guided-choice requests, concurrency {concurrency}")
    for column in ("way", "requests", "seconds", "req/s", "valid answers"):
        table.add_column(column, justify="left" if column == "way" else "right")
    for r in results:
        table.add_row(
            r.way, str(r.requests), f"{r.seconds:.1f}", f"{r.rps:.1f}", f"{r.valid}/{r.requests}"
        )
    console.print(table)
    ceiling, ours, sequential = results
    console.print(f"vidagent / ceiling    = {ours.rps / ceiling.rps:.2f}  (goal >= 0.90)")
    console.print(f"vidagent / sequential = {ours.rps / sequential.rps:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="OpenAI-compatible base URL; default: start a local server")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the concurrent ways")
    parser.add_argument(
        "--vllm-python",
        default=os.environ.get("VIDAGENT_VLLM_PYTHON", str(REPO / ".venv-vllm/bin/python")),
    )
    args = parser.parse_args()
    console = Console(soft_wrap=True)

    def say(line: str) -> None:
        console.print(f"[dim]{line}[/dim]")

    if args.url:
        results = bench(normalize_url(args.url), args.requests, args.concurrency, args.rounds, say)
    else:
        with tempfile.TemporaryDirectory(prefix="vidagent-bench-") as tmp:
            say("building the tiny Llama and starting a vLLM server")
            model_dir = build_tiny_llama(Path(tmp) / "tiny")
            with start_vllm_server(
                args.vllm_python, model_dir, log_path=Path(tmp) / "server.log"
            ) as server:
                results = bench(
                    normalize_url(server.url), args.requests, args.concurrency, args.rounds, say
                )
    report(results, args.concurrency, console)


if __name__ == "__main__":
    main()
