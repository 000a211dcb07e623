"""``vidagent train llm``: LoRA (or full) SFT of the reasoner on a task's own prompts.

The examples (:mod:`vidagent.train.sft_data`) are the chat messages inference sends, with the
ground truth in the task's guided-output format as the completion. Each is tokenized exactly as
the backends prompt the model: the chat template with the generation prompt, tokenized without
special tokens (:class:`~vidagent.llm.hf_backend.HFBackend`, vLLM's chat), then the completion's
tokens and the end-of-sequence token. The loss is on the completion only (labels ``-100`` on the
prompt and the padding).

Training is the transformers :class:`~transformers.Trainer`: gradient accumulation, bf16 on a GPU
that has it (fp32 on CPU), a checkpoint every ``save_steps`` (in ``<out>.checkpoints/``, what
``resume`` continues from), eval loss on the val split before training, at every eval and at the
end, progress through a callback (:class:`TrainProgress`; the CLI draws it). Several GPUs: run the
same command under ``accelerate launch`` or ``torchrun``; the Trainer runs data-parallel and only
the main process writes the output.

The output folder (a PEFT adapter, or with ``full`` a whole model folder with its tokenizer) and
its :class:`~vidagent.llm.adapter.AdapterManifest` are written to a temp folder beside ``out`` and
renamed at the end: nothing half-written is ever where an adapter is expected.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vidagent.core.errors import MissingDependencyError
from vidagent.llm.adapter import MANIFEST_FILE, AdapterManifest, LoRASettings, model_fingerprint
from vidagent.train.errors import EmptySplitError, TrainError
from vidagent.train.sft_data import SFTExample, data_hash, prompt_hash

IGNORE = -100


class TrainLLMConfig(BaseModel):
    """What to train and how (the CLI's options, checked)."""

    model_config = ConfigDict(extra="forbid")

    base_model: str = Field(description="Hub id or folder of the base (the served model)")
    out: Path = Field(description="Adapter folder to write (a model folder with full)")
    task: str = Field(description="The benchmark whose prompts the examples are")
    full: bool = Field(default=False, description="Fine-tune every weight (small models)")
    lora: LoRASettings = Field(default_factory=LoRASettings)
    epochs: float = Field(default=3.0, gt=0)
    max_steps: int = Field(default=-1, description="> 0: stop after this many optimizer steps")
    lr: float = Field(default=2e-4, gt=0)
    batch_size: int = Field(default=4, ge=1, description="Examples per device per micro-batch")
    grad_accum: int = Field(default=1, ge=1, description="Micro-batches per optimizer step")
    max_length: int = Field(default=4096, ge=8, description="Longer examples are skipped")
    save_steps: int = Field(default=0, ge=0, description="Checkpoint every N steps (0: none)")
    eval_steps: int = Field(default=0, ge=0, description="Eval every N steps (0: each epoch)")
    resume: bool = Field(default=False, description="Continue from the last checkpoint")
    overwrite: bool = Field(default=False, description="Replace an existing output folder")
    device: str = Field(default="auto", description="auto, cpu, cuda")
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    seed: int = 0

    @property
    def checkpoints(self) -> Path:
        return self.out.parent / f"{self.out.name}.checkpoints"


class TrainProgress(BaseModel):
    """One progress event: a logged training loss or an eval loss at ``step`` of ``total``."""

    model_config = ConfigDict(extra="forbid")

    step: int
    total: int
    epoch: float = 0.0
    loss: float | None = None
    eval_loss: float | None = None


class LLMTrainReport(BaseModel):
    """What a run wrote and measured."""

    model_config = ConfigDict(extra="forbid")

    out: Path
    manifest: AdapterManifest
    steps: int
    skipped_long: int = Field(description="Examples over max_length, left out")


ProgressCallback = Callable[[TrainProgress], None]


def encode_example(
    tokenizer: Any, example: SFTExample, max_length: int
) -> dict[str, list[int]] | None:
    """``input_ids`` and ``labels`` (``-100`` on the prompt) of one example, tokenized as the
    backends prompt the model; None when it is longer than ``max_length``."""
    prompt = tokenizer.apply_chat_template(
        [m.model_dump() for m in example.messages], add_generation_prompt=True, tokenize=False
    )
    prompt_ids = tokenizer(prompt, add_special_tokens=False).input_ids
    completion_ids = tokenizer(example.completion, add_special_tokens=False).input_ids
    completion_ids = [*completion_ids, int(tokenizer.eos_token_id)]
    ids = [*prompt_ids, *completion_ids]
    if len(ids) > max_length:
        return None
    return {"input_ids": ids, "labels": [IGNORE] * len(prompt_ids) + completion_ids}


def pad_batch(rows: Sequence[dict[str, list[int]]], pad_id: int) -> dict[str, Any]:
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` tensors of a batch."""
    import torch

    width = max(len(r["input_ids"]) for r in rows)
    ids, mask, labels = [], [], []
    for r in rows:
        fill = width - len(r["input_ids"])
        ids.append(r["input_ids"] + [pad_id] * fill)
        mask.append([1] * len(r["input_ids"]) + [0] * fill)
        labels.append(r["labels"] + [IGNORE] * fill)
    return {
        "input_ids": torch.tensor(ids),
        "attention_mask": torch.tensor(mask),
        "labels": torch.tensor(labels),
    }


def linear_module_names(model: Any) -> list[str]:
    """The distinct last names of the model's linear layers (what LoRA can target)."""
    import torch

    names = {
        n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)
    }
    return sorted(names)


def check_targets(model: Any, targets: Sequence[str], base: str) -> None:
    """Every LoRA target names a linear layer of ``model``, else one :class:`TrainError` line."""
    known = linear_module_names(model)
    missing = [t for t in targets if t not in known]
    if missing:
        raise TrainError(
            f"LoRA target module {missing[0]!r} does not exist in {base}; its linear layers "
            f"are: {', '.join(known)}"
        )


def _encode_all(
    tokenizer: Any, examples: Sequence[SFTExample], max_length: int, split: str
) -> tuple[list[dict[str, list[int]]], int]:
    rows = [encode_example(tokenizer, ex, max_length) for ex in examples]
    kept = [r for r in rows if r is not None]
    if not kept:
        raise EmptySplitError(
            f"the {split} split has no example within --max-length {max_length} "
            f"({len(examples)} given)"
        )
    return kept, len(rows) - len(kept)


def _use_bf16(config: TrainLLMConfig, torch: Any) -> bool:
    on_gpu = config.device != "cpu" and torch.cuda.is_available()
    if config.precision == "bf16" and not on_gpu:
        raise TrainError("--precision bf16 needs a CUDA GPU (use fp32 on CPU)")
    if config.precision == "auto":
        return bool(on_gpu and torch.cuda.is_bf16_supported())
    return config.precision == "bf16"


def _progress_callback(on_progress: ProgressCallback | None) -> Any:
    from transformers import TrainerCallback

    class _Progress(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if on_progress is None or not state.is_world_process_zero or not logs:
                return
            loss, eval_loss = logs.get("loss"), logs.get("eval_loss")
            if loss is None and eval_loss is None:
                return
            on_progress(
                TrainProgress(
                    step=state.global_step, total=state.max_steps, epoch=state.epoch or 0.0,
                    loss=loss, eval_loss=eval_loss,
                )
            )  # fmt: skip

    return _Progress()


def train_llm(
    config: TrainLLMConfig,
    train: Sequence[SFTExample],
    val: Sequence[SFTExample],
    *,
    on_progress: ProgressCallback | None = None,
) -> LLMTrainReport:
    """Fine-tune ``config.base_model`` on ``train`` (eval loss on ``val``); write the adapter
    and its manifest to ``config.out`` (module docstring)."""
    if not train:
        raise EmptySplitError("the train split has no example")
    if not val:
        raise EmptySplitError("the val split has no example (give --val or a larger split)")
    if config.out.exists() and not config.overwrite:
        raise TrainError(f"{config.out} exists; pass --overwrite to replace it")
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments
    except ImportError as err:
        raise MissingDependencyError("transformers", "vidagent train llm", "perception") from err
    from vidagent.tools.models import load_pretrained

    bf16 = _use_bf16(config, torch)
    tokenizer = load_pretrained(AutoTokenizer.from_pretrained, config.base_model)
    if tokenizer.eos_token_id is None:
        raise TrainError(f"the tokenizer of {config.base_model} has no end-of-sequence token")
    pad_id = (
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    )
    train_rows, long_train = _encode_all(tokenizer, train, config.max_length, "train")
    val_rows, long_val = _encode_all(tokenizer, val, config.max_length, "val")
    dtype = torch.bfloat16 if bf16 and not config.full else torch.float32
    model: Any = load_pretrained(
        AutoModelForCausalLM.from_pretrained, config.base_model, dtype=dtype
    )
    lora = None if config.full else config.lora
    if lora is not None:
        from peft import LoraConfig, get_peft_model

        check_targets(model, lora.target_modules, config.base_model)
        peft_config = LoraConfig(
            r=lora.rank, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
            target_modules=list(lora.target_modules), task_type="CAUSAL_LM",
        )  # fmt: skip
        model = get_peft_model(model, peft_config)
    checkpoints = config.checkpoints
    args = TrainingArguments(
        output_dir=str(checkpoints),
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        learning_rate=config.lr,
        warmup_steps=0,
        logging_steps=1,
        eval_strategy="steps" if config.eval_steps else "epoch",
        eval_steps=config.eval_steps or None,
        save_strategy="steps" if config.save_steps else "no",
        save_steps=config.save_steps or 500,
        save_total_limit=2,
        bf16=bf16,
        use_cpu=config.device == "cpu" or not torch.cuda.is_available(),
        seed=config.seed,
        report_to=[],
        remove_unused_columns=False,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_rows,  # a list is a map-style dataset
        eval_dataset=val_rows,
        data_collator=lambda rows: pad_batch(rows, int(pad_id)),
        callbacks=[_progress_callback(on_progress)],
    )
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # progress goes to on_progress, not stdout
    before = trainer.evaluate()["eval_loss"]
    resume = config.resume and checkpoints.is_dir() and any(checkpoints.glob("checkpoint-*"))
    result = trainer.train(resume_from_checkpoint=True if resume else None)
    after = trainer.evaluate()["eval_loss"]
    manifest = AdapterManifest(
        kind="full" if config.full else "lora",
        base_model=config.base_model,
        base_fingerprint=model_fingerprint(config.base_model),
        task=config.task,
        prompt_hash=prompt_hash(train),
        data_hash=data_hash(train),
        lora=lora,
        train_examples=len(train_rows),
        val_examples=len(val_rows),
        metrics={
            "train_loss": float(result.training_loss),
            "eval_loss_before": float(before),
            "eval_loss": float(after),
            "steps": float(result.global_step),
            "train_seconds": float(result.metrics.get("train_runtime", 0.0)),
        },
    )
    if trainer.is_world_process_zero():
        _write_output(config, model, tokenizer, manifest)
    return LLMTrainReport(
        out=config.out,
        manifest=manifest,
        steps=result.global_step,
        skipped_long=long_train + long_val,
    )


def _write_output(
    config: TrainLLMConfig, model: Any, tokenizer: Any, manifest: AdapterManifest
) -> None:
    """Save into ``.<out>.tmp-<pid>``, write the manifest last, then rename it to ``out``."""
    out = config.out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save_pretrained(tmp)
        if config.full:
            tokenizer.save_pretrained(tmp)
        (tmp / MANIFEST_FILE).write_text(
            manifest.model_dump_json(indent=1) + "\n", encoding="utf-8"
        )
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
