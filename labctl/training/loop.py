"""One training loop for teachers and students: AdamW with a one-cycle learning rate, random-shift
augmentation, cross-entropy or (with a teacher) KD on the same augmented batch, the teacher run as
a folded inference copy; the test metric is measured after every epoch."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from labctl.data.dataset import Dataset, Split
from labctl.models.spectral import SpectralConv
from labctl.training.allocator import retain_freed_memory
from labctl.training.augment import random_shift
from labctl.training.kd import kd_loss
from labctl.training.metrics import evaluate
from labctl.training.teacher_inference import inference_copy

#: called after each batch with (epoch, batches done in the epoch, batches per epoch, running loss)
ProgressHook = Callable[[int, int, int, float], None]


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 10
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    max_shift: int = 2  # random-translation augmentation, pixels
    train_limit: int | None = None  # use only the first N training images
    # Low temperature, equal weight: on the deformed-digits stand-in (benchmarks/hard_digits.py) T = 1-2
    # gained about 1 point over labels alone, T = 4 and the paper's T = 10 lost; T = 4 lost on
    # Fashion-MNIST too, where these defaults recover 55-56 % of the teacher-student gap with the
    # default student (the sweep: benchmarks/distillation.md).
    kd_temperature: float = 2.0
    kd_alpha: float = 0.5
    mixup: float = 0.0  # Beta(m, m) mixing of image pairs (classification); 0: off
    # learning-rate multiplier for the free per-frequency filters of spectral layers (see
    # parameter_groups); on Fashion-MNIST 16 raised the SCLC by 0.1-0.3 points and its fit to the
    # training images by 1.3 (benchmarks/distillation.md)
    spectral_lr_scale: float = 16.0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.spectral_lr_scale <= 0:
            raise ValueError(
                f"epochs, batch size, learning rate and spectral learning-rate scale must be positive; "
                f"got {self.epochs}, {self.batch_size}, {self.lr}, {self.spectral_lr_scale}"
            )


def _mixed(loss: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor, lam: float, partner: torch.Tensor | None) -> torch.Tensor:
    """``loss`` against the labels of a mixed batch: λ·loss(y) + (1−λ)·loss(y of the partners)."""
    if partner is None:
        return loss(y)
    return lam * loss(y) + (1 - lam) * loss(y[partner])


def parameter_groups(model: nn.Module, settings: TrainSettings) -> list[dict]:
    """Optimiser groups: spectral-layer filters at ``lr × spectral_lr_scale``, everything else at ``lr``.

    Adam moves every weight by about the same step. A k × k spatial kernel whose k² taps each move
    by that step changes its transfer function by up to k² steps at every frequency; a free filter
    value per frequency (:class:`SpectralConv`) changes by one step. Left at the common rate, the
    optical front end learns an order of magnitude more slowly than the back end reading it.
    """
    spectral = {id(p) for m in model.modules() if isinstance(m, SpectralConv) for p in m.parameters() if p.requires_grad}
    groups = [
        {"params": [p for p in model.parameters() if p.requires_grad and id(p) not in spectral], "lr": settings.lr},
        # decay divided by the scale: the same shrinkage per step as at the common rate
        {
            "params": [p for p in model.parameters() if id(p) in spectral], "lr": settings.lr * settings.spectral_lr_scale,
            "weight_decay": settings.weight_decay / settings.spectral_lr_scale,
        },
    ]
    return [g for g in groups if g["params"]]


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, split: Split, batch_size: int, max_images: int = 2048) -> None:
    """Re-estimate BatchNorm running statistics with the final weights of the epoch (a cumulative
    average over up to ``max_images`` training images). The usual running average lags the weights
    when they move fast (short, high-learning-rate runs), which can leave an eval-mode network
    predicting one class although it trains well."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    seen = 0
    for x, _ in split.batches(batch_size):
        model(x)
        seen += len(x)
        if seen >= max_images:
            break
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.eval()


def fit(
    model: nn.Module,
    data: Dataset,
    settings: TrainSettings,
    teacher: nn.Module | None = None,
    progress: ProgressHook | None = None,
) -> list[dict]:
    """Train ``model`` in place; with ``teacher``, by KD (temperature/alpha from ``settings``).
    Returns the per-epoch history: epoch, loss, seconds and the test metrics.

    Tunes the process's allocator to keep freed tensor memory (:func:`retain_freed_memory`)."""
    retain_freed_memory()
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    train = data.train
    if settings.train_limit is not None:
        train = train.subset(torch.arange(min(settings.train_limit, len(train))))
    steps = -(-len(train) // settings.batch_size)
    groups = parameter_groups(model, settings)
    optimiser = torch.optim.AdamW(groups, lr=settings.lr, weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, [g["lr"] for g in groups], total_steps=steps * settings.epochs, pct_start=0.15)
    if teacher is not None:
        teacher = inference_copy(teacher)
    history = []
    for epoch in range(1, settings.epochs + 1):
        model.train()
        start, total, seen = time.perf_counter(), 0.0, 0
        for step, (x, y) in enumerate(train.batches(settings.batch_size, shuffle=True, generator=generator), 1):
            x, y = random_shift(x, y, settings.max_shift, generator)
            lam, partner = 1.0, None
            if settings.mixup > 0 and data.task == "classification":
                lam = float(torch.distributions.Beta(settings.mixup, settings.mixup).sample())
                partner = torch.randperm(len(x), generator=generator)
                x = lam * x + (1 - lam) * x[partner]
            logits = model(x)
            if teacher is None:
                loss = _mixed(lambda t: F.cross_entropy(logits, t), y, lam, partner)
            else:
                with torch.no_grad():
                    teacher_logits = teacher(x)
                loss = _mixed(lambda t: kd_loss(logits, teacher_logits, t, settings.kd_temperature, settings.kd_alpha), y, lam, partner)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(x)
            seen += len(x)
            if progress is not None:
                progress(epoch, step, steps, total / seen)
        recalibrate_batchnorm(model, train, settings.batch_size)
        metrics = evaluate(model, data.test, data.task)
        history.append({"epoch": epoch, "loss": total / max(seen, 1), "seconds": time.perf_counter() - start, **metrics})
    model.eval()
    return history
