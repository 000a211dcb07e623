"""Example-bank speed and size: build time, memory and selection latency for flat, HNSW and IVF.

Usage::

    HF_HUB_OFFLINE=1 python bench/retrieval.py [--n 100000] [--dim 384] [--queries 400]
                                               [--text-n 10000] [--no-text] [--no-ivf]

Two banks:

* ``synthetic``: ``--n`` clustered unit vectors (``--dim``, 1,000 Gaussian clusters; HNSW recall
  must be measured on clustered data, not on isotropic noise). Queries are fresh points around
  the same centres.
* ``minilm``: ``--text-n`` synthetic egocentric action sentences ("take knife, cut onion, ...",
  seeded) embedded with the real bundled all-MiniLM-L6-v2; queries are further such sentences,
  embedded once up front (query embedding is timed separately: it is the same for every index).

For each bank and index type: build time (embedding excluded), memory (growth of the process RSS
across the build, and the serialized index size), and per-query latency (p50 / p99 over
``--queries`` single queries after a warm-up) of the two selections the agent runs:
``topk`` (k = 8) and ``mmr`` (k = 8 from fetch_k = 32, λ = 0.5), both with the query's own
"video" excluded, through the public :func:`vidagent.retrieval.select_examples`. ``recall@10`` is
the overlap of the index's top 10 with exact search. Goal: mmr p50 under 5 ms on the 100k bank.

Caveats: the machine may be shared (load from other processes shows up in p99); FAISS runs single
queries on one thread (see :func:`vidagent.retrieval.faiss_index.single_thread`); the flat index is
memory-bandwidth bound (each query reads all n x dim x 4 bytes).
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vidagent.retrieval import (
    Example,
    ExampleBank,
    SentenceTransformerEmbedder,
    normalize_rows,
    select_examples,
)
from vidagent.retrieval.faiss_index import import_faiss

# One string each keeps the vocabulary readable; split once at import.
VERBS = (  # noqa: SIM905
    "take put cut wash open close pour stir move turn hold drop pick fold wipe mix peel"
).split()
NOUNS = (  # noqa: SIM905
    "knife onion plate cup bowl pan door drawer water tomato bread towel box lid spoon dough "
    "screw drill wood paint brush phone bag shirt soil plant"
).split()


@dataclass(frozen=True)
class Row:
    bank: str
    index: str
    n: int
    build_s: float
    rss_mib: float
    index_mib: float
    recall10: float
    topk_p50: float
    topk_p99: float
    mmr_p50: float
    mmr_p99: float


def rss_mib() -> float:
    """Resident set size of this process from /proc (no psutil dependency)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def clustered(n: int, dim: int, clusters: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).normal(size=(clusters, dim)).astype(np.float32)
    out = centres[rng.integers(0, clusters, size=n)]
    out += rng.normal(0.0, 0.7, size=(n, dim)).astype(np.float32)  # cos ~0.67 within a cluster
    return normalize_rows(out)


def sentences(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [
        ", ".join(f"{rng.choice(VERBS)} {rng.choice(NOUNS)}" for _ in range(rng.randint(4, 10)))
        for _ in range(n)
    ]


def percentiles(fn: Callable[[int], object], count: int) -> tuple[float, float]:
    for i in range(min(20, count)):  # warm-up
        fn(i)
    times = []
    for i in range(count):
        start = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def measure(
    name: str,
    index_type: str,
    examples: list[Example],
    vectors: np.ndarray,
    queries: np.ndarray,
    truth: np.ndarray,
) -> tuple[Row, ExampleBank]:
    faiss = import_faiss()
    before = rss_mib()
    start = time.perf_counter()
    bank = ExampleBank.from_vectors(
        examples,
        vectors,
        embedder_id=name,
        index_type=index_type,  # type: ignore[arg-type]
    )
    build_s = time.perf_counter() - start
    rss = rss_mib() - before
    index_mib = faiss.serialize_index(bank._index).nbytes / 2**20
    found = [bank.search(q, 10)[1] for q in queries]
    recall = float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)]))

    def topk(i: int) -> object:
        return select_examples(
            bank, queries[i], 8, strategy="topk", exclude_sources={f"video{i % 997}"}
        )

    def mmr(i: int) -> object:
        return select_examples(
            bank, queries[i], 8, fetch_k=32, lambda_=0.5, exclude_sources={f"video{i % 997}"}
        )

    topk_p = percentiles(topk, len(queries))
    mmr_p = percentiles(mmr, len(queries))
    row = Row(name, index_type, len(examples), build_s, rss, index_mib, recall, *topk_p, *mmr_p)
    return row, bank


def run_bank(
    name: str, vectors: np.ndarray, queries: np.ndarray, texts: list[str] | None, types: list[str]
) -> list[Row]:
    n = len(vectors)
    examples = [
        Example(
            task="bench",
            input=texts[i] if texts else f"example {i}",
            target="",
            video_id=f"video{i % 997}",
        )
        for i in range(n)
    ]
    faiss = import_faiss()
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(queries, 10)  # batched, all threads
    del exact
    rows = []
    for index_type in types:
        row, bank = measure(name, index_type, examples, vectors, queries, truth)
        rows.append(row)
        del bank
        print(f"  {name} {index_type}: done", flush=True)
    return rows


def table(rows: list[Row]) -> str:
    head = (
        "| bank | index | n | build s | RSS Δ MiB | index MiB | recall@10 | topk p50 ms | "
        "topk p99 ms | mmr p50 ms | mmr p99 ms |"
    )
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        lines.append(
            f"| {r.bank} | {r.index} | {r.n:,} | {r.build_s:.1f} | {r.rss_mib:.0f} | "
            f"{r.index_mib:.0f} | {r.recall10:.3f} | {r.topk_p50:.2f} | {r.topk_p99:.2f} | "
            f"{r.mmr_p50:.2f} | {r.mmr_p99:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--text-n", type=int, default=10_000)
    parser.add_argument("--no-text", action="store_true", help="Skip the MiniLM bank.")
    parser.add_argument("--no-ivf", action="store_true", help="Skip IVF indexes.")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    types = ["flat", "hnsw"] + ([] if args.no_ivf else ["ivf"])
    print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()}", flush=True)

    rows = run_bank(
        "synthetic",
        clustered(args.n, args.dim, 1000, seed=1),
        clustered(args.queries, args.dim, 1000, seed=2),
        None,
        types,
    )
    if not args.no_text:
        embedder = SentenceTransformerEmbedder(batch_size=128)
        embedder.setup()
        texts = sentences(args.text_n, seed=1)
        start = time.perf_counter()
        vectors = embedder.embed(texts)
        embed_s = time.perf_counter() - start
        query_texts = sentences(args.queries, seed=2)
        queries = embedder.embed(query_texts)
        one = percentiles(lambda i: embedder.embed([query_texts[i]]), min(args.queries, 200))
        print(
            f"MiniLM: embedded {len(texts):,} sentences in {embed_s:.1f} s "
            f"({len(texts) / embed_s:.0f}/s); one query: p50 {one[0]:.1f} ms, p99 {one[1]:.1f} ms",
            flush=True,
        )
        rows += run_bank("minilm", vectors, queries, texts, types)
    print(f"load average after: {os.getloadavg()}")
    print(table(rows))


if __name__ == "__main__":
    main()
