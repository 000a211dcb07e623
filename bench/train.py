"""Training throughput and memory: action-head samples/s and ``train llm`` SFT tokens/s.

Usage::

    HF_HUB_OFFLINE=1 python bench/train.py [--only head|sft] [--n 16000] [--epochs 2]
        [--device cpu] [--steps 3] [--seq 512]

Rows (each run in its own subprocess, so ``peak RSS`` is that row's own high-water mark, from
``getrusage``; ``peak GPU`` is ``torch.cuda.max_memory_allocated`` when the device is CUDA):

* ``head / world (tiny CLIP)``: the default synthetic world
  (:func:`vidagent.testing.world.build_world`: 8 train + 4 val clips of 32 actions, 64 px,
  10 fps) perceived with the tiny random-weight CLIP
  (16-d segment embeddings, 4 frames per segment), then :func:`vidagent.train.train_actions`
  with the linear head for 200 epochs. Also reports the val action top-1 it reaches and the
  perception time (segments/s, cold store).
* ``head / ego4d-size linear`` and ``head / ego4d-size mlp-512``: :func:`vidagent.train.fit_head`
  on ``--n`` random unit vectors of 1152 dims (SigLIP so400m, the default embedder) with Ego4D
  v2's 117 verbs and 521 nouns, ``--epochs`` epochs of batch 256, 10% as many val samples: the
  compute of training on a real recognition set, without the data.

The metric is training samples per second (epochs x train samples / fit seconds, the per-epoch val
pass included), best of one run. Caveats: the machine may be shared (other processes only ever
add time); tiny problems run torch single-threaded on CPU (:mod:`vidagent.train.fit`).

SFT rows (``sft / ...``): :func:`vidagent.train.llm.train_llm`, the code ``vidagent train llm``
runs, for ``--steps`` optimizer steps on examples of ``--seq`` tokens each (batch 4 for the tiny
model, 1 for the 0.5B one), Trainer and all:

* ``tiny Llama, full`` and ``tiny Llama, LoRA r16``: the test model (2 layers, 128 wide, 384
  tokens of vocabulary);
* ``0.5B-class Llama, LoRA r16``: random weights in Qwen2.5-0.5B's shape (24 layers, 896 wide,
  14 heads / 2 KV heads, 4864 MLP, 151,936 vocabulary, tied embeddings: 494M parameters) with
  the tiny tokenizer (the ids it uses are a subset; the compute is the full model's), LoRA on
  q/k/v/o.

tokens/s counts the tokens the optimizer steps trained on (steps x batch x sequence length) over
the Trainer's own train time (``train_runtime``, model load and the eval passes excluded).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@dataclass(frozen=True)
class Row:
    bench: str
    config: str
    device: str
    samples: int
    epochs: int
    seconds: float
    throughput: float
    unit: str
    peak_rss_mib: float
    peak_gpu_mib: float | None
    note: str = ""


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _peak_gpu_mib(device: str) -> float | None:
    if not device.startswith("cuda"):
        return None
    import torch

    return torch.cuda.max_memory_allocated() / 2**20


def world_head(args: argparse.Namespace) -> Row:
    from vidagent.store.perception import PerceptionStore
    from vidagent.testing.tiny_models import build_tiny
    from vidagent.testing.world import build_world
    from vidagent.tools.visual_embedder import EmbedderParams, SegmentEmbedder
    from vidagent.train import HeadOptions, TrainActionsConfig, train_actions
    from vidagent.train.actions import action_data
    from vidagent.train.features import resolve_videos, segment_features
    from vidagent.train.labels import load_labels

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        world = build_world(root / "worlds")
        clip = str(build_tiny("clip", root / "models"))
        store = PerceptionStore(root / "store")
        embedder = SegmentEmbedder(EmbedderParams(model=clip, device=args.device))
        spans = [
            s
            for split in ("train", "val")
            for s in load_labels(world.lta_file(split), world.taxonomy)  # type: ignore[arg-type]
        ]
        start = time.perf_counter()
        feats = segment_features(resolve_videos([s.video for s in spans], world.videos_dir),
                                 embedder, store)  # fmt: skip
        perceive_s = time.perf_counter() - start
        segments = sum(len(f.segments) for f in feats.values())
        assert len(action_data(spans, feats, 0.5)) > 0
        config = TrainActionsConfig(
            labels=world.lta_file("train"), val_labels=world.lta_file("val"),
            videos_dir=world.videos_dir, taxonomy=world.taxonomy_file,
            out=root / "head.safetensors", head=HeadOptions(device=args.device, epochs=200),
        )  # fmt: skip
        report = train_actions(config, embedder=embedder, store=store)
    return Row(
        "head", "world (tiny CLIP, linear)", args.device, report.train.samples,
        report.epochs_run, report.fit_seconds, report.samples_per_second, "samples/s",
        _peak_rss_mib(), _peak_gpu_mib(args.device),
        f"val action top-1 {report.val_metrics.action_top1:.3f} (chance "
        f"{report.chance.action_top1:.3f}); perceive {segments / perceive_s:.0f} segments/s",
    )  # fmt: skip


def synthetic_head(args: argparse.Namespace, hidden: int) -> Row:
    import numpy as np

    from vidagent.train import ActionData, HeadOptions, fit_head

    dim, verbs, nouns = 1152, 117, 521
    rng = np.random.default_rng(0)

    def data(n: int) -> ActionData:
        x = rng.normal(size=(n, dim)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return ActionData(x, rng.integers(0, verbs, n), rng.integers(0, nouns, n))

    train, val = data(args.n), data(max(1, args.n // 10))
    options = HeadOptions(hidden=hidden, epochs=args.epochs, patience=args.epochs,
                          device=args.device)  # fmt: skip
    fit = fit_head(train, val, verbs, nouns, options)
    name = "ego4d-size linear" if not hidden else f"ego4d-size mlp-{hidden}"
    return Row(
        "head", name, args.device, len(train), len(fit.history), round(fit.seconds, 3),
        round(fit.samples_per_second, 1), "samples/s", _peak_rss_mib(),
        _peak_gpu_mib(args.device), f"{dim}-d, {verbs} verbs, {nouns} nouns",
    )  # fmt: skip


HEAD_CASES: dict[str, Callable[[argparse.Namespace], Row]] = {
    "world": world_head,
    "linear": lambda a: synthetic_head(a, 0),
    "mlp": lambda a: synthetic_head(a, 512),
}


def head_rows(args: argparse.Namespace) -> list[Row]:
    return _subprocess_rows(args, HEAD_CASES)


def _subprocess_rows(args: argparse.Namespace, cases: dict[str, Callable[..., Row]]) -> list[Row]:
    """Each case in its own subprocess (its own peak RSS)."""
    rows = []
    for case in cases:
        cmd = [sys.executable, __file__, "--case", case, "--n", str(args.n)]
        cmd += ["--epochs", str(args.epochs), "--device", args.device]
        cmd += ["--steps", str(args.steps), "--seq", str(args.seq)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"{case}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(Row(**json.loads(done.stdout.strip().splitlines()[-1])))
    return rows


def _llama_05b(out: Path) -> Path:
    """Random weights in Qwen2.5-0.5B's shape (a Llama config) with the tiny tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from vidagent.testing.tiny_llm import build_tokenizer

    tokenizer = build_tokenizer()
    vocab = tokenizer.get_vocab()
    config = LlamaConfig(
        vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
        num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=4096,
        tie_word_embeddings=True, bos_token_id=vocab["<s>"], eos_token_id=vocab["</s>"],
        pad_token_id=vocab["<pad>"],
    )  # fmt: skip
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _examples(model: Path, seq: int, n: int) -> list:
    """``n`` chat examples of exactly ``seq`` tokens as train llm encodes them."""
    from transformers import AutoTokenizer

    from vidagent.core.records import ChatMessage
    from vidagent.train.llm import encode_example
    from vidagent.train.sft_data import SFTExample

    tok = AutoTokenizer.from_pretrained(model)
    words = "take knife, cut onion, put knife, take pan, stir pan, wash cup, put cup, open fridge"
    out = []
    for i in range(n):
        text = f"{i} " + words * (4 * seq // len(words) + 1)
        completion = '{"actions":[{"verb":"take","noun":"knife"}]}'
        ex = SFTExample(key=str(i), messages=[ChatMessage(role="user", content=text)],
                        completion=completion)  # fmt: skip
        row = encode_example(tok, ex, 10**6)
        assert row is not None
        over = len(row["input_ids"]) - seq
        while over > 0:  # trim the prompt text until the whole example is seq tokens
            text = text[: -max(1, over)]
            ex = ex.model_copy(update={"messages": [ChatMessage(role="user", content=text)]})
            row = encode_example(tok, ex, 10**6)
            assert row is not None
            over = len(row["input_ids"]) - seq
        out.append(ex)
    return out


def sft_case(args: argparse.Namespace, size: str, lora: bool) -> Row:
    from vidagent.testing.tiny_llm import build_tiny_llama
    from vidagent.train.llm import TrainLLMConfig, train_llm

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tiny = size == "tiny"
        model = build_tiny_llama(root / "m") if tiny else _llama_05b(root / "m")
        batch = 4 if tiny else 1
        examples = _examples(model, args.seq, batch * args.steps)
        settings: dict[str, object] = (
            {"lora": {"rank": 16, "alpha": 32, "target_modules": ["q_proj", "k_proj", "v_proj",
                                                                  "o_proj"]}}
            if lora else {"full": True}
        )  # fmt: skip
        config = TrainLLMConfig(
            base_model=str(model), out=root / "out", task="ego4d_lta", max_steps=args.steps,
            batch_size=batch, eval_steps=10**9, device=args.device, **settings,
        )  # fmt: skip
        report = train_llm(config, examples, examples[:1])
        seconds = report.manifest.metrics["train_seconds"]
    tokens = args.steps * batch * args.seq
    name = ("tiny Llama" if tiny else "0.5B-class Llama") + (", LoRA r16" if lora else ", full")
    return Row(
        "sft", name, args.device, tokens, args.steps, round(seconds, 2),
        round(tokens / seconds, 1), "tokens/s", _peak_rss_mib(), _peak_gpu_mib(args.device),
        f"batch {batch} x {args.seq} tokens",
    )  # fmt: skip


SFT_CASES: dict[str, Callable[[argparse.Namespace], Row]] = {
    "sft-tiny-full": lambda a: sft_case(a, "tiny", lora=False),
    "sft-tiny-lora": lambda a: sft_case(a, "tiny", lora=True),
    "sft-05b-lora": lambda a: sft_case(a, "0.5b", lora=True),
}
CASES = {**HEAD_CASES, **SFT_CASES}


def sft_rows(args: argparse.Namespace) -> list[Row]:
    return _subprocess_rows(args, SFT_CASES)


BENCHES: dict[str, Callable[[argparse.Namespace], list[Row]]] = {
    "head": head_rows,
    "sft": sft_rows,
}


def print_table(rows: list[Row]) -> None:
    cols = ("bench", "config", "device", "samples", "epochs", "seconds", "throughput", "unit",
            "peak RSS MiB", "peak GPU MiB", "note")  # fmt: skip
    cells = [
        [r.bench, r.config, r.device, str(r.samples), str(r.epochs), f"{r.seconds:.2f}",
         f"{r.throughput:,.0f}", r.unit, f"{r.peak_rss_mib:.0f}",
         "-" if r.peak_gpu_mib is None else f"{r.peak_gpu_mib:.0f}", r.note]
        for r in rows
    ]  # fmt: skip
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    print(" | ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for row in cells:
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(BENCHES), help="One bench (default: all).")
    parser.add_argument("--n", type=int, default=16000, help="Ego4D-size rows: train samples.")
    parser.add_argument("--epochs", type=int, default=2, help="Ego4D-size rows: epochs.")
    parser.add_argument("--device", default="cpu", help="torch device of the fits.")
    parser.add_argument("--steps", type=int, default=3, help="SFT rows: optimizer steps.")
    parser.add_argument("--seq", type=int, default=512, help="SFT rows: tokens per example.")
    parser.add_argument("--case", choices=sorted(CASES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:  # a subprocess of head_rows: one row as JSON on the last line
        print(json.dumps(asdict(CASES[args.case](args))))
        return
    rows = [row for name, bench in BENCHES.items() if args.only in (None, name)
            for row in bench(args)]  # fmt: skip
    print_table(rows)


if __name__ == "__main__":
    main()
