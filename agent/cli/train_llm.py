"""``vidagent train llm``: LoRA SFT of the reasoner on a benchmark's own prompts.

A thin shell: the benchmark loads its annotation file(s), every sample is rendered by the
benchmark's own solve (:func:`vidagent.train.sft_data.build_examples`) from its timeline
(``--timelines DIR`` of ``vidagent perceive`` files, or ``--captions FILE``), then
:func:`vidagent.train.llm.train_llm` trains and writes the adapter. One bar of optimizer steps
with the latest loss and eval loss is drawn on stderr; the manifest's metrics are printed at the
end. The lead mounts :func:`llm` on the ``train`` app.

Several GPUs: ``accelerate launch -m vidagent.cli train llm ...`` (or ``torchrun --nproc-per-node
N -m vidagent.cli train llm ...``): the Trainer runs data-parallel, the main process writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import TaskID

from vidagent.cli.options import BankOpt
from vidagent.core.records import Timeline
from vidagent.train.llm import TrainProgress

Opt = typer.Option


def llm(
    task: Annotated[
        str,
        Opt(
            "--task", metavar="BENCHMARK", help="Benchmark whose prompts to learn, e.g. ego4d_lta."
        ),
    ],
    annotations: Annotated[
        Path,
        Opt("--annotations", metavar="FILE", help="Training annotation file of the benchmark."),
    ],
    base_model: Annotated[
        str,
        Opt(
            "--base-model",
            metavar="MODEL",
            help="Base LLM (hub id or folder): the model inference serves.",
        ),
    ],
    out: Annotated[
        Path,
        Opt(
            "--out",
            "-o",
            metavar="DIR",
            help="Adapter folder to write (a model folder with --full).",
        ),
    ],
    timelines: Annotated[
        Path | None,
        Opt(
            "--timelines",
            metavar="DIR",
            help="Timeline JSON files of vidagent perceive (<video_id>.json).",
        ),
    ] = None,
    captions: Annotated[
        Path | None,
        Opt(
            "--captions",
            metavar="FILE",
            help="Precomputed captions {video_id: [{start, end, caption}]}.",
        ),
    ] = None,
    val: Annotated[
        Path | None,
        Opt(
            "--val",
            metavar="FILE",
            help="Val labels (default: hold out --val-fraction).",
        ),
    ] = None,
    val_fraction: Annotated[
        float, Opt("--val-fraction", metavar="F", help="Without --val: videos held out.")
    ] = 0.1,
    taxonomy: Annotated[
        Path | None, Opt("--taxonomy", metavar="FILE", help="Verb/noun taxonomy JSON (ego4d_lta).")
    ] = None,
    z: Annotated[
        int | None, Opt("--z", min=1, metavar="Z", help="LTA: future actions per target.")
    ] = None,
    candidates: Annotated[
        int | None,
        Opt("--candidates", min=1, metavar="K", help="LTA: candidates (as the eval will ask)."),
    ] = None,
    observed: Annotated[
        int | None, Opt("--observed", min=1, metavar="N", help="LTA: observed actions.")
    ] = None,
    max_timeline_chars: Annotated[
        int,
        Opt(
            "--max-timeline-chars",
            min=1,
            metavar="N",
            help="Timeline budget of the prompt (as the eval).",
        ),
    ] = 4000,
    bank: BankOpt = None,
    examples: Annotated[
        int | None,
        Opt(
            "--examples",
            min=0,
            metavar="N",
            help="In-context examples per prompt (needs --bank; default 3 with it, as eval run).",
            show_default=False,
        ),
    ] = None,
    full: Annotated[
        bool, Opt("--full", help="Fine-tune every weight instead of a LoRA (small models).")
    ] = False,
    rank: Annotated[int, Opt("--rank", min=1, metavar="R", help="LoRA rank.")] = 16,
    alpha: Annotated[int, Opt("--alpha", min=1, metavar="A", help="LoRA alpha.")] = 32,
    dropout: Annotated[
        float, Opt("--dropout", min=0.0, max=0.99, metavar="P", help="LoRA dropout.")
    ] = 0.05,
    target_modules: Annotated[
        str,
        Opt("--target-modules", metavar="NAMES", help="Comma-separated linear layers LoRA adapts."),
    ] = "q_proj,k_proj,v_proj,o_proj",
    epochs: Annotated[float, Opt("--epochs", min=0.01, metavar="N", help="Most epochs.")] = 3.0,
    max_steps: Annotated[
        int, Opt("--max-steps", metavar="N", help="> 0: stop after N optimizer steps.")
    ] = -1,
    lr: Annotated[float, Opt("--lr", min=0.0, metavar="RATE", help="Learning rate.")] = 2e-4,
    batch_size: Annotated[
        int, Opt("--micro-batch", min=1, metavar="N", help="Examples per device per micro-batch.")
    ] = 4,
    grad_accum: Annotated[
        int, Opt("--grad-accum", min=1, metavar="N", help="Micro-batches per optimizer step.")
    ] = 1,
    max_length: Annotated[
        int, Opt("--max-length", min=8, metavar="TOKENS", help="Longer examples are left out.")
    ] = 4096,
    save_steps: Annotated[
        int, Opt("--save-steps", min=0, metavar="N", help="Checkpoint every N steps (0: none).")
    ] = 0,
    eval_steps: Annotated[
        int,
        Opt("--eval-steps", min=0, metavar="N", help="Eval loss every N steps (0: each epoch)."),
    ] = 0,
    resume: Annotated[
        bool, Opt("--resume", help="Continue from the last checkpoint in <out>.checkpoints/.")
    ] = False,
    overwrite: Annotated[
        bool, Opt("--overwrite", help="Replace an existing --out folder.")
    ] = False,
    device: Annotated[
        str, Opt("--device", metavar="DEVICE", help="auto, cpu, cuda, cuda:N.")
    ] = "auto",
    precision: Annotated[
        str, Opt("--precision", metavar="P", help="auto (bf16 on a GPU that has it), bf16, fp32.")
    ] = "auto",
    seed: Annotated[int, Opt("--seed", metavar="N", help="Seed of the split and the fit.")] = 0,
) -> None:
    """Fine-tune the reasoner (LoRA, or --full) on a benchmark's prompts; write the adapter.

    The prompts are the ones eval run sends with the same options (--max-timeline-chars,
    --bank/--examples, Z/K): give the same ones to both. Serve it with --llm-model BASE
    --llm-adapter DIR in process, or start vLLM with --enable-lora --lora-modules NAME=DIR and
    pass --llm-model NAME.
    """
    from vidagent.api.config import validated
    from vidagent.core.errors import ConfigError
    from vidagent.evals.benchmark import Params
    from vidagent.evals.common import Sample, read_taxonomy
    from vidagent.evals.registry import benchmark
    from vidagent.llm.adapter import LoRASettings
    from vidagent.tasks.steps import TaskOptions
    from vidagent.train.llm import TrainLLMConfig, train_llm
    from vidagent.train.sft_data import (
        SFTExample,
        build_examples,
        require_examples,
        split_by_video,
    )

    if (timelines is None) == (captions is None):
        raise ConfigError("give exactly one of --timelines DIR and --captions FILE")
    if bank is None and examples:
        raise ConfigError(
            f"--examples {examples} needs --bank (an example bank folder from vidagent index build)"
        )
    if bank is not None and not bank.is_dir():
        raise ConfigError(f"--bank {bank}: not a directory")
    lora = validated(
        LoRASettings, rank=rank, alpha=alpha, dropout=dropout,
        target_modules=[t.strip() for t in target_modules.split(",") if t.strip()],
    )  # fmt: skip
    config = validated(
        TrainLLMConfig, base_model=base_model, out=out, task=task, full=full, lora=lora,
        epochs=epochs, max_steps=max_steps, lr=lr, batch_size=batch_size, grad_accum=grad_accum,
        max_length=max_length, save_steps=save_steps, eval_steps=eval_steps, resume=resume,
        overwrite=overwrite, device=device, precision=precision, seed=seed,
    )  # fmt: skip
    bench = benchmark(task)
    params = validated(Params, z=z, candidates=candidates, observed=observed)
    tax = read_taxonomy(taxonomy) if taxonomy else None
    source = _source(timelines, captions)
    train_samples = bench.load_samples(annotations, params)
    if val is not None:
        val_samples = bench.load_samples(val, params)
    else:
        train_samples, val_samples = split_by_video(train_samples, val_fraction, seed)
    from vidagent.cli.eval_sources import load_bank

    k = (3 if examples is None else examples) if bank is not None else 0
    options = TaskOptions(max_timeline_chars=max_timeline_chars, k=k)
    example_bank = load_bank(bank)

    def rendered(samples: list[Sample], split: str) -> list[SFTExample]:
        data = build_examples(
            bench, samples, source, options=options, params=params, taxonomy=tax,
            bank=example_bank,
        )  # fmt: skip
        return require_examples(data, split)

    train_examples, val_examples = rendered(train_samples, "train"), rendered(val_samples, "val")
    console = Console(stderr=True)
    with steps_bar(console) as on_progress:
        report = train_llm(config, train_examples, val_examples, on_progress=on_progress)
    m = report.manifest
    Console().print(
        f"{m.kind} adapter {report.out}: {m.train_examples} train / {m.val_examples} val examples, "
        f"{report.steps} steps; eval loss {m.metrics['eval_loss_before']:.4f} -> "
        f"{m.metrics['eval_loss']:.4f} (train loss {m.metrics['train_loss']:.4f})",
        highlight=False,
        soft_wrap=True,
    )


def _source(timelines: Path | None, captions: Path | None) -> Callable[[str], Timeline]:
    from vidagent.evals.sources import CaptionsFile, TimelineDir

    if timelines is not None:
        return TimelineDir(timelines)
    assert captions is not None
    return CaptionsFile(captions)


@contextmanager
def steps_bar(console: Console) -> Iterator[Callable[[TrainProgress], None]]:
    """A bar of optimizer steps; its description the latest loss and eval loss."""
    from vidagent.cli.progress import progress_bar

    bar = progress_bar(console=console)
    tasks: list[TaskID] = []
    last: dict[str, float] = {}

    def on_progress(p: TrainProgress) -> None:
        if not tasks:
            bar.start()
            tasks.append(bar.add_task("training", total=p.total or None))
        if p.loss is not None:
            last["loss"] = p.loss
        if p.eval_loss is not None:
            last["eval"] = p.eval_loss
        text = " ".join(f"{k} {v:.3f}" for k, v in last.items())
        bar.update(
            tasks[0], completed=p.step, total=p.total or None, description=f"training {text}"
        )

    try:
        yield on_progress
    finally:
        if tasks:
            bar.stop()
