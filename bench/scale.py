"""Scale-out overhead: perception videos/s locally vs on Ray (1 and 2 actors), and eval samples/s
against one vs two vLLM replicas.

Perception: ``--videos`` synthetic H.264 clips (``vidagent.testing.synth.write_video``,
``--seconds`` long, 160x120) through the tiny CLIP (embedder + actions) and tiny BLIP (captions) of
:mod:`vidagent.testing.tiny_models` on CPU, each way into a fresh store so every video is computed:

* ``local``: :func:`vidagent.tools.perceive.perceive_many` in this process (models loaded once,
  included);
* ``ray-1`` / ``ray-2``: :func:`vidagent.tools.perceive_ray.perceive_ray` with 1 / 2 actors on a
  local Ray instance started once beforehand (``ray.init`` time is printed apart); each run includes
  the driver's planning, the actors' start and model loads, and Ray Data scheduling.

``overhead s`` is the run's wall time minus the local one. Every Ray run's timelines are checked to
equal the local ones. On a 2-core machine expect no speed-up: the point is the fixed cost.

Eval: ``--samples`` NExT-QA questions (``tests/data/nextqa/val.csv``) answered from a
synthetic captions file with :func:`vidagent.evals.runner.run_samples` (``--concurrency`` in flight,
no response cache) against one tiny-Llama vLLM server, then against two (the same servers,
balanced by :class:`vidagent.llm.openai_backend.OpenAIBackend`); both are warmed up first. Both
servers share this machine's cores, so two replicas cannot be faster here; on separate GPUs
throughput adds up. ``--no-eval`` skips this part.

    .venv/bin/python bench/scale.py [--videos 8] [--seconds 6] [--samples 96] [--no-eval]
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
NEXTQA = REPO / "tests" / "data" / "nextqa" / "val.csv"


def _timelines(folder: Path) -> dict[str, Any]:
    return {p.name: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def bench_perception(root: Path, videos: int, seconds: float, table: Table) -> None:
    import ray

    from vidagent.api import PerceptionConfig, build_tools
    from vidagent.store.perception import PerceptionStore
    from vidagent.testing.synth import write_video
    from vidagent.testing.tiny_models import build_tiny
    from vidagent.tools.perceive import perceive_many
    from vidagent.tools.perceive_ray import RayPlan, perceive_ray

    clip, blip = build_tiny("clip", root / "models"), build_tiny("blip", root / "models")
    config = PerceptionConfig(
        captioner=str(blip), caption_max_tokens=5, action_model=str(clip), top_k=2,
        embedder=str(clip), frames_per_segment=2, device="cpu",
    )  # fmt: skip
    make_tools = functools.partial(build_tools, config)
    paths = [
        write_video(root / "videos" / f"v{i:03d}.mp4", seconds=seconds, cuts=[i + 5]).path
        for i in range(videos)
    ]
    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    init_s = time.perf_counter() - started
    try:
        store = PerceptionStore(root / "store-local")
        t0 = time.perf_counter()
        summary = perceive_many(
            paths, tools=make_tools(store=store), store=store, out_dir=root / "out-local"
        )
        local_s = time.perf_counter() - t0
        assert summary.count("ok") == videos, summary.failed
        reference = _timelines(root / "out-local")
        table.add_row("perception", "local", f"{local_s:.1f}", f"{videos / local_s:.2f}", "-")
        for workers in (1, 2):
            store = PerceptionStore(root / f"store-ray{workers}")
            out = root / f"out-ray{workers}"
            t0 = time.perf_counter()
            summary = perceive_ray(paths, make_tools=make_tools, store=store, out_dir=out,
                                   plan=RayPlan(workers=workers, videos_per_task=2))  # fmt: skip
            wall = time.perf_counter() - t0
            assert summary.count("ok") == videos, summary.failed
            assert _timelines(out) == reference, "Ray timelines differ from the local ones"
            table.add_row("perception", f"ray-{workers}", f"{wall:.1f}",
                          f"{videos / wall:.2f}", f"{wall - local_s:+.1f}")  # fmt: skip
    finally:
        ray.shutdown()
    table.add_row("perception", "(ray.init)", f"{init_s:.1f}", "-", "-")


def _nextqa_slice(root: Path, samples: int) -> tuple[Path, Path]:
    with NEXTQA.open(newline="") as fh:
        reader = csv.DictReader(fh)
        rows = [r for _, r in zip(range(samples), reader, strict=False)]
        fields = reader.fieldnames or []
    ann = root / "nextqa.csv"
    with ann.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    caption = [{"start": 0, "end": 4, "caption": "a child plays with a dog"}]
    cap = root / "captions.json"
    cap.write_text(json.dumps({r["video"]: caption for r in rows}))
    return ann, cap


def bench_eval(root: Path, samples: int, concurrency: int, table: Table) -> None:
    from vidagent.evals import benchmark
    from vidagent.evals.runner import RunConfig
    from vidagent.testing.tiny_llm import build_tiny_llama
    from vidagent.testing.vllm_server import start_vllm_server

    python = Path(os.environ.get("VIDAGENT_VLLM_PYTHON", REPO / ".venv-vllm" / "bin" / "python"))
    model = build_tiny_llama(root / "tiny-llama")
    servers = [start_vllm_server(python, model, log_path=root / f"vllm{i}.log") for i in (0, 1)]
    try:
        ann, cap = _nextqa_slice(root, samples)
        tasks = benchmark("nextqa").load_samples(ann)
        config = RunConfig(task="nextqa", annotations=str(ann), source=f"captions:{cap}",
                           max_timeline_chars=200, max_concurrency=concurrency)  # fmt: skip
        # a fresh server's first (structured) requests are slow: warm each one with a short run
        for i, server in enumerate(servers):
            _eval_run(tasks[:concurrency], [server.url], cap, config, root / f"warm-{i}")
        for count in (1, 2):
            urls = [s.url for s in servers[:count]]
            wall, spread = _eval_run(tasks, urls, cap, config, root / f"eval-{count}")
            table.add_row("eval", f"{count} replica(s), sent {spread}", f"{wall:.1f}",
                          f"{len(tasks) / wall:.2f}", "-")  # fmt: skip
    finally:
        for server in servers:
            server.stop()


def _eval_run(
    tasks: list[Any], urls: list[str], cap: Path, config: Any, run_dir: Path
) -> tuple[float, str]:
    """Answer ``tasks`` over ``urls``: wall seconds, and the requests each URL got (``a/b``)."""
    from vidagent.evals.runner import Solver, check_config, run_samples
    from vidagent.evals.sources import CaptionsFile
    from vidagent.llm import LLMClient, RetryPolicy
    from vidagent.llm.openai_backend import OpenAIBackend

    backend = OpenAIBackend(urls, retry=RetryPolicy())
    llm = LLMClient(backend, max_concurrency=config.max_concurrency)
    check_config(run_dir, config, force=False)  # creates the run folder
    source, solve = CaptionsFile(cap), Solver(llm, config)
    t0 = time.perf_counter()
    try:
        done = run_samples(tasks, source=source, solve=solve, run_dir=run_dir,
                           workers=config.max_concurrency)  # fmt: skip
    finally:
        llm.close()
    wall = time.perf_counter() - t0
    assert all(r.ok for r in done.values()), "some eval samples failed"
    return wall, "/".join(str(s.sent) for s in backend.stats())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=6.0, help="Length of each clip.")
    parser.add_argument("--samples", type=int, default=96, help="Eval questions.")
    parser.add_argument("--concurrency", type=int, default=8, help="Eval samples in flight.")
    parser.add_argument("--no-eval", action="store_true", help="Perception only.")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    table = Table(title=f"scale-out on {os.cpu_count()} CPU cores")
    for col in ("part", "way", "wall s", "items/s", "overhead s"):
        table.add_column(col, justify="left" if col in ("part", "way") else "right")
    with tempfile.TemporaryDirectory(prefix="vidagent-scale-") as tmp:
        os.environ["VIDAGENT_HOME"] = str(Path(tmp) / "home")
        bench_perception(Path(tmp), args.videos, args.seconds, table)
        if not args.no_eval:
            bench_eval(Path(tmp), args.samples, args.concurrency, table)
    Console().print(table)


if __name__ == "__main__":
    main()
