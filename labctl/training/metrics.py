"""Evaluation metrics: accuracy for classification, foreground IoU and Dice for segmentation."""

from __future__ import annotations

import torch
from torch import nn

from labctl.data.dataset import Split


@torch.no_grad()
def predict_logits(model: nn.Module, split: Split, batch_size: int = 256) -> torch.Tensor:
    model.eval()
    return torch.cat([model(x) for x, _ in split.batches(batch_size)])


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, task: str, batch_size: int = 256) -> dict[str, float]:
    """``{"accuracy"}`` for classification; ``{"iou", "dice"}`` of the foreground (class ≥ 1) for
    segmentation, pooled over all test pixels."""
    model.eval()
    if task == "classification":
        correct = 0
        for x, y in split.batches(batch_size):
            correct += int((model(x).argmax(1) == y).sum())
        return {"accuracy": correct / max(len(split), 1)}
    inter = union = total = 0
    for x, y in split.batches(batch_size):
        pred = model(x).argmax(1) > 0
        truth = y > 0
        inter += int((pred & truth).sum())
        union += int((pred | truth).sum())
        total += int(pred.sum() + truth.sum())
    return {"iou": inter / union if union else 1.0, "dice": 2 * inter / total if total else 1.0}


def agreement(logits: torch.Tensor, reference_logits: torch.Tensor) -> float:
    """Share of images (segmentation: pixels) on which two models' logits (from
    :func:`predict_logits`) pick the same class, right or wrong. With a teacher as reference this is
    the student's fidelity (Stanton et al., NeurIPS 2021): on training images it says how much of the
    teacher's function the student can follow at all, which bounds what distillation can pass on."""
    if logits.shape != reference_logits.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and reference logits {tuple(reference_logits.shape)} differ")
    return float((logits.argmax(1) == reference_logits.argmax(1)).float().mean()) if logits.numel() else 0.0


def headline(metrics: dict[str, float]) -> float:
    """The one number a training curve tracks: accuracy, or IoU."""
    return metrics["accuracy"] if "accuracy" in metrics else metrics["iou"]
