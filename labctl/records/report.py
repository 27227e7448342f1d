"""What a finished (or interrupted) run achieved: metrics, confusion matrix, rates, faults."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labctl.records.drift_history import DRIFT_EVENTS, DriftHistory, read_drift_history
from labctl.records.run_record import RunRecord


#: events a run logs that are not device faults
NOT_FAULTS = ("resumed", "interrupted", "aborted", *DRIFT_EVENTS)


@dataclass
class RunReport:
    path: Path
    task: str
    inputs: int
    done: int
    metrics: dict[str, float]
    confusion: np.ndarray | None
    camera_frames_per_s: float | None
    wall_frames_per_s: float | None
    faults: dict[str, int]
    provenance: dict[str, Any] = field(default_factory=dict)
    frames_per_input: int = 1  # camera frames (and masks shown) per input: one per channel group
    drift: DriftHistory | None = None  # the drift monitor's checks (None: the run had none)

    def summary(self) -> dict[str, Any]:
        per_input = self.frames_per_input
        return {
            "inputs": self.inputs, "done": self.done, **self.metrics,
            "camera_frames_per_s": self.camera_frames_per_s, "wall_frames_per_s": self.wall_frames_per_s,
            "frames_per_input": per_input,
            "wall_inputs_per_s": self.wall_frames_per_s / per_input if self.wall_frames_per_s is not None else None,
            "faults": sum(self.faults.values()),
            **(self.drift.summary() if self.drift is not None else {}),
        }


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, classes: int) -> np.ndarray:
    """counts[true, predicted]."""
    counts = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(counts, (labels, predictions), 1)
    return counts


def segmentation_scores(labels: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """Mean IoU and Dice of the foreground (class > 0) over the images."""
    truth, pred = labels > 0, predictions > 0
    inter = (truth & pred).sum(axis=(1, 2)).astype(float)
    union = (truth | pred).sum(axis=(1, 2)).astype(float)
    sizes = truth.sum(axis=(1, 2)) + pred.sum(axis=(1, 2))
    iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    dice = np.where(sizes > 0, 2 * inter / np.maximum(sizes, 1), 1.0)
    return {"iou": float(iou.mean()), "dice": float(dice.mean())}


def build_report(path: str | Path) -> RunReport:
    with RunRecord.open(path) as rec:
        done = rec.done
        task = rec.attr("task") or "classification"
        labels = rec.column("label")[done]
        preds = rec.column("prediction")[done]
        stamps = rec.column("timestamp_s")[done]
        events = rec.events()
        summary = rec.attr("last_summary")
        per_input = int(rec.attr("frames_per_input") or 1)  # records from before multiplexing: one frame
        provenance = {k: rec.attr(k) for k in ("bench_file", "devices", "calibration", "mask_file", "model_checkpoint", "data", "method")}
        logits_classes = rec.column("logits").shape[1] if task == "classification" else 0
        drift = read_drift_history(rec)
    metrics: dict[str, float] = {}
    confusion = None
    if done.any():
        if task == "classification":
            classes = max(logits_classes, int(labels.max()) + 1, int(preds.max()) + 1)
            confusion = confusion_matrix(labels.astype(int), preds.astype(int), classes)
            metrics["accuracy"] = float(np.trace(confusion) / confusion.sum())
        else:
            metrics.update(segmentation_scores(labels, preds))
    camera_rate = None
    if stamps.size > 1 and np.ptp(stamps) > 0:
        camera_rate = float((stamps.size - 1) / np.ptp(stamps)) * per_input  # the stamps are one per input
    wall_rate = float(summary["frames_per_s"]) * per_input if summary else None  # the runner counts inputs
    faults = Counter(e["kind"] for e in events if e["kind"] not in NOT_FAULTS)
    return RunReport(Path(path), task, int(done.size), int(done.sum()), metrics, confusion, camera_rate, wall_rate, dict(faults),
                     provenance, per_input, drift)


def save_confusion_png(confusion: np.ndarray, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5))
    im = ax.imshow(confusion, cmap="Blues")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    n = confusion.shape[0]
    if n <= 20:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if confusion[i, j] > confusion.max() / 2 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
