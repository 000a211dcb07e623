"""Fitting the verb and noun heads on frozen embeddings (torch, CPU or GPU).

The model reads the embeddings standardized with the training set's per-dimension mean and
standard deviation (random or real CLIP vectors crowd into a small cone of the sphere; a linear
head trains much faster on centred, scaled inputs), and the standardization is folded into the
first layer afterwards, so the saved head reads the raw unit embeddings as
:mod:`vidagent.tools.action_head` documents. Linear by default (``hidden=0``: ``W @ e + b`` per
output); ``hidden=H`` puts one shared ReLU layer of ``H`` units before both outputs.

Loss: cross-entropy of the verbs plus that of the nouns; ``balanced`` weighs each class by
``n / (classes seen * count)`` of the training set. Adam with weight decay, shuffled mini-batches,
one validation pass per epoch; the weights of the epoch with the lowest validation loss are kept,
and training stops when it has not improved for ``patience`` epochs (early stopping).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vidagent.train.metrics import recognition_metrics


class HeadOptions(BaseModel):
    """How the head is trained (``vidagent train actions`` options)."""

    model_config = ConfigDict(extra="forbid")

    hidden: int = Field(default=0, ge=0, description="0: linear; H: one ReLU layer of H units")
    epochs: int = Field(default=200, ge=1)
    patience: int = Field(default=20, ge=1, description="Stop after this many epochs w/o gain")
    lr: float = Field(default=1e-2, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    batch_size: int = Field(default=256, ge=1)
    balanced: bool = Field(default=False, description="Class-balanced loss weights")
    seed: int = 0
    device: str = Field(default="cpu", description="torch device: cpu, cuda, cuda:N")


@dataclass(frozen=True)
class ActionData:
    """Training or validation samples: ``(n, D)`` embeddings and their class indices."""

    embeddings: np.ndarray
    verbs: np.ndarray
    nouns: np.ndarray

    def __len__(self) -> int:
        return len(self.verbs)


class EpochReport(BaseModel):
    """One epoch, as the progress callback and the metrics file see it."""

    model_config = ConfigDict(extra="forbid")

    epoch: int
    epochs: int
    train_loss: float
    val_loss: float
    val_verb_top1: float
    val_noun_top1: float
    val_action_top1: float
    best_epoch: int


@dataclass
class HeadWeights:
    """The fitted head on raw embeddings (standardization folded in), float32 numpy."""

    verb_w: np.ndarray
    verb_b: np.ndarray
    noun_w: np.ndarray
    noun_b: np.ndarray
    hidden_w: np.ndarray | None = None
    hidden_b: np.ndarray | None = None


@dataclass(frozen=True)
class FitResult:
    weights: HeadWeights
    history: list[EpochReport]
    best_epoch: int
    seconds: float
    samples_seen: int

    @property
    def samples_per_second(self) -> float:
        return self.samples_seen / self.seconds if self.seconds > 0 else 0.0


_SMALL = 2**22
"""Below this many multiply-adds per batch the fit runs single-threaded on CPU."""


def _class_weights(labels: np.ndarray, classes: int) -> np.ndarray:
    counts = np.bincount(labels, minlength=classes).astype(np.float64)
    seen = counts > 0
    weights = np.zeros(classes)
    weights[seen] = len(labels) / (seen.sum() * counts[seen])
    return weights.astype(np.float32)


def _net(torch: Any, dim: int, hidden: int, n_verbs: int, n_nouns: int) -> Any:
    nn = torch.nn

    class Head(nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.hidden = nn.Linear(dim, hidden) if hidden else None
            width = hidden or dim
            self.verb, self.noun = nn.Linear(width, n_verbs), nn.Linear(width, n_nouns)

        def forward(self, x: Any) -> tuple[Any, Any]:
            if self.hidden is not None:
                x = torch.relu(self.hidden(x))
            return self.verb(x), self.noun(x)

    return Head()


def _fold(net: Any, mean: np.ndarray, std: np.ndarray) -> HeadWeights:
    """Weights that read raw ``e``: ``A @ ((e - mean) / std) + c == (A / std) @ e + c'``."""

    def arr(t: Any) -> np.ndarray:
        return np.asarray(t.detach().cpu().double().numpy())

    def folded(layer: Any) -> tuple[np.ndarray, np.ndarray]:
        w = arr(layer.weight) / std
        return w.astype(np.float32), (arr(layer.bias) - w @ mean).astype(np.float32)

    if net.hidden is None:
        return HeadWeights(*folded(net.verb), *folded(net.noun))
    f32 = np.float32
    return HeadWeights(
        arr(net.verb.weight).astype(f32), arr(net.verb.bias).astype(f32),
        arr(net.noun.weight).astype(f32), arr(net.noun.bias).astype(f32),
        *folded(net.hidden),
    )  # fmt: skip


@dataclass(frozen=True)
class _Tensors:
    """The standardized inputs, labels and loss weights on the device."""

    x: Any
    verbs: Any
    nouns: Any
    val_x: Any
    val_verbs: Any
    val_nouns: Any
    verb_weight: Any
    noun_weight: Any


def fit_head(
    train: ActionData,
    val: ActionData,
    n_verbs: int,
    n_nouns: int,
    options: HeadOptions | None = None,
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> FitResult:
    """Fit the heads on ``train``, early-stopped on ``val`` (see the module doc)."""
    from vidagent.tools.models import require_torch, resolve_device

    torch = require_torch("training an action head")
    opts = options or HeadOptions()
    device = resolve_device(opts.device)
    mean = train.embeddings.astype(np.float64).mean(axis=0)
    std = train.embeddings.astype(np.float64).std(axis=0)
    std = np.maximum(std, max(float(std.max()), 1e-12) * 1e-3)

    def tensor(a: np.ndarray, dtype: Any) -> Any:
        return torch.as_tensor(a, dtype=dtype, device=device)

    def weights(labels: np.ndarray, classes: int) -> Any:
        return tensor(_class_weights(labels, classes), torch.float32) if opts.balanced else None

    data = _Tensors(
        x=tensor((train.embeddings - mean) / std, torch.float32),
        verbs=tensor(train.verbs, torch.long),
        nouns=tensor(train.nouns, torch.long),
        val_x=tensor((val.embeddings - mean) / std, torch.float32),
        val_verbs=tensor(val.verbs, torch.long),
        val_nouns=tensor(val.nouns, torch.long),
        verb_weight=weights(train.verbs, n_verbs),
        noun_weight=weights(train.nouns, n_nouns),
    )
    started = time.perf_counter()
    work = min(opts.batch_size, len(train)) * train.embeddings.shape[1]
    work *= opts.hidden or (n_verbs + n_nouns)
    threads = torch.get_num_threads()
    if device == "cpu" and work < _SMALL:
        torch.set_num_threads(1)  # tiny matrices: more threads only add synchronization
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(opts.seed)
            net = _net(torch, train.embeddings.shape[1], opts.hidden, n_verbs, n_nouns)
            history, seen = _train(torch, net.to(device), data, val, opts, on_epoch)
    finally:
        torch.set_num_threads(threads)
    seconds = time.perf_counter() - started
    best = history[-1].best_epoch if history else 0
    return FitResult(_fold(net, mean, std), history, best, seconds, seen)


def _train(
    torch: Any,
    net: Any,
    data: _Tensors,
    val: ActionData,
    opts: HeadOptions,
    on_epoch: Callable[[EpochReport], None] | None,
) -> tuple[list[EpochReport], int]:
    """The epochs; ``net`` ends with the weights of its best epoch. The history and the number
    of training samples seen."""
    optim = torch.optim.Adam(net.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)
    generator = torch.Generator().manual_seed(opts.seed)
    ce = torch.nn.functional.cross_entropy
    n = len(data.verbs)
    best_loss, best_epoch, best_state = float("inf"), 0, None
    history: list[EpochReport] = []
    seen = 0
    for epoch in range(1, opts.epochs + 1):
        net.train()
        order = torch.randperm(n, generator=generator).to(data.x.device)
        total = 0.0
        for start in range(0, n, opts.batch_size):
            idx = order[start : start + opts.batch_size]
            verb_logits, noun_logits = net(data.x[idx])
            loss = ce(verb_logits, data.verbs[idx], weight=data.verb_weight) + ce(
                noun_logits, data.nouns[idx], weight=data.noun_weight
            )
            optim.zero_grad()
            loss.backward()
            optim.step()
            total += float(loss.detach()) * len(idx)
            seen += len(idx)
        net.eval()
        with torch.no_grad():
            verb_logits, noun_logits = net(data.val_x)
            val_loss = float(ce(verb_logits, data.val_verbs) + ce(noun_logits, data.val_nouns))
        metrics = recognition_metrics(
            verb_logits.cpu().numpy(), noun_logits.cpu().numpy(), val.verbs, val.nouns
        )
        if val_loss < best_loss - 1e-6:
            best_loss, best_epoch = val_loss, epoch
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        report = EpochReport(
            epoch=epoch, epochs=opts.epochs, train_loss=round(total / n, 5),
            val_loss=round(val_loss, 5), val_verb_top1=metrics.verb_top1,
            val_noun_top1=metrics.noun_top1, val_action_top1=metrics.action_top1,
            best_epoch=best_epoch,
        )  # fmt: skip
        history.append(report)
        if on_epoch is not None:
            on_epoch(report)
        if epoch - best_epoch >= opts.patience:
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    return history, seen
