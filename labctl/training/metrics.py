"""Evaluation metrics: accuracy for classification, foreground IoU and Dice for segmentation."""

from __future__ import annotations

import torch
from torch import nn

from labctl.data.dataset import Split


def model_device(model: nn.Module) -> torch.device:
    """Where ``model``'s weights are (the CPU for a model without any)."""
    return next(model.parameters(), torch.empty(0)).device


@torch.no_grad()
def predict_logits(model: nn.Module, split: Split, batch_size: int = 256) -> torch.Tensor:
    """Logits for every image of ``split``, on the model's device."""
    model.eval()
    device = model_device(model)
    return torch.cat([model(x.to(device)) for x, _ in split.batches(batch_size)])


@torch.no_grad()
def evaluation_counts(model: nn.Module, split: Split, task: str, batch_size: int = 256) -> torch.Tensor:
    """What the metrics are made of, as int64 counts that add up over parts of a split (processes
    each evaluating a shard): (correct, images) for classification; foreground (intersection, union,
    predicted + true pixels) for segmentation."""
    model.eval()
    device = model_device(model)
    counts = torch.zeros(2 if task == "classification" else 3, dtype=torch.long)
    for x, y in split.batches(batch_size):
        x, y = x.to(device), y.to(device)
        if task == "classification":
            counts += torch.stack([(model(x).argmax(1) == y).sum(), torch.tensor(len(y), device=device)]).cpu()
            continue
        pred, truth = model(x).argmax(1) > 0, y > 0
        counts += torch.stack([(pred & truth).sum(), (pred | truth).sum(), pred.sum() + truth.sum()]).cpu()
    return counts


def metrics_from_counts(counts: torch.Tensor, task: str) -> dict[str, float]:
    """``{"accuracy"}`` or ``{"iou", "dice"}`` from :func:`evaluation_counts`."""
    if task == "classification":
        correct, n = counts.tolist()
        return {"accuracy": correct / max(n, 1)}
    inter, union, total = counts.tolist()
    return {"iou": inter / union if union else 1.0, "dice": 2 * inter / total if total else 1.0}


def evaluate(model: nn.Module, split: Split, task: str, batch_size: int = 256) -> dict[str, float]:
    """``{"accuracy"}`` for classification; ``{"iou", "dice"}`` of the foreground (class ≥ 1) for
    segmentation, pooled over all test pixels. Runs on the model's device."""
    return metrics_from_counts(evaluation_counts(model, split, task, batch_size), task)


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
