"""The training-curve plot saved next to each checkpoint."""

from __future__ import annotations

from pathlib import Path


def save_curves(history: list[dict], path: Path, title: str) -> Path:
    """Training loss per epoch and the test metric on the epochs it was measured (all of them unless
    training was told to measure less often: ``TrainSettings.eval_every``), as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    metric = "accuracy" if history and "accuracy" in history[-1] else "iou"
    measured = [h for h in history if metric in h]
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax_loss.plot(epochs, [h["loss"] for h in history], marker="o")
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="loss")
    ax_metric.plot([h["epoch"] for h in measured], [h[metric] for h in measured], marker="o", color="tab:green")
    ax_metric.set(xlabel="epoch", ylabel=f"test {metric}", title=metric)
    for ax in (ax_loss, ax_metric):
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
