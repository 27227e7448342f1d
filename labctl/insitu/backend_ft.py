"""Back-end fine-tuning: retrain the electronic back end on what the bench really delivers.

The 2025 follow-up to the seed paper (Xiang et al., arXiv 2508.08421) recovers fabricated optics this
way from ~10 % of the training data. Here the back end reads bench readouts (after the per-channel
scale fitted before the run) and learns from the labels and, where a teacher is given, from the
teacher's softened outputs (Hinton KD, as in the distillation itself).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from labctl.training.kd import kd_loss


@dataclass
class BackendFineTuneConfig:
    """Gentle by default: a few hundred bench frames easily over-fit a back end trained on thousands."""

    epochs: int = 12
    lr: float = 5e-4
    weight_decay: float = 1e-4
    batch_size: int = 32
    kd_temperature: float = 4.0
    kd_alpha: float = 0.5
    seed: int = 0


def accuracy(back_end: nn.Module, detected: torch.Tensor, labels: torch.Tensor) -> float:
    back_end.eval()
    with torch.no_grad():
        return float((back_end(detected).argmax(1) == labels).float().mean())


def finetune_back_end(
    back_end: nn.Module,
    detected: torch.Tensor,
    labels: torch.Tensor,
    teacher_logits: torch.Tensor | None,
    config: BackendFineTuneConfig,
    on_epoch: Callable[[int, float], None] = lambda epoch, loss: None,
) -> nn.Module:
    """A fine-tuned copy of ``back_end`` (the original is left as it was).

    BatchNorm statistics are re-estimated on the bench data (train mode), which by itself corrects
    much of a scale or offset mismatch between the twin and the bench.
    """
    model = copy.deepcopy(back_end)
    generator = torch.Generator().manual_seed(config.seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, max(1, config.epochs))
    n = detected.shape[0]
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(n, generator=generator)
        total = 0.0
        for start in range(0, n, config.batch_size):
            idx = order[start : start + config.batch_size]
            if idx.numel() < 2:  # BatchNorm needs two samples
                continue
            logits = model(detected[idx])
            if teacher_logits is None:
                loss = F.cross_entropy(logits, labels[idx])
            else:
                loss = kd_loss(logits, teacher_logits[idx], labels[idx], config.kd_temperature, config.kd_alpha)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * idx.numel()
        schedule.step()
        on_epoch(epoch, total / n)
    return model.eval()


def finetune_validated(
    back_end: nn.Module,
    detected: torch.Tensor,
    labels: torch.Tensor,
    teacher_logits: torch.Tensor | None,
    config: BackendFineTuneConfig,
    validation_fraction: float = 0.2,
) -> tuple[nn.Module, dict[str, float | bool]]:
    """Fine-tune only if it helps: train on part of the captured frames, compare on the rest.

    With few bench frames a retrained back end can do worse than the one trained in simulation. The
    candidate is trained on ``1 − validation_fraction`` of the frames; if it beats the current back
    end on the held-back frames, the back end is fine-tuned on all of them, else kept as it was.
    """
    n = detected.shape[0]
    order = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed + 7))
    n_val = max(1, int(round(validation_fraction * n)))
    val, train = order[:n_val], order[n_val:]
    teacher_train = teacher_logits[train] if teacher_logits is not None else None
    candidate = finetune_back_end(back_end, detected[train], labels[train], teacher_train, config)
    before = accuracy(back_end, detected[val], labels[val])
    after = accuracy(candidate, detected[val], labels[val])
    info: dict[str, float | bool] = {"validation_before": before, "validation_after": after, "accepted": after >= before}
    if after < before:
        return copy.deepcopy(back_end).eval(), info
    return finetune_back_end(back_end, detected, labels, teacher_logits, config), info
