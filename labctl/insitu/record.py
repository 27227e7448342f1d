"""The fine-tuning record: results, accuracy against bench frames, the fitted twin, provenance;
and the plot of accuracy against bench frames used."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from drivers.errors import LabctlError

FORMAT = "labctl-finetune/1"


class FineTuneRecordError(LabctlError, ValueError):
    """A file given as a fine-tuning record is not one."""


class FineTuneRecord:
    @staticmethod
    def write(path: Path, result, state: dict[str, Any], provenance: dict[str, Any]) -> Path:
        """Write ``path`` (replacing this run's earlier one) and the plot beside it."""
        tmp = path.with_suffix(".partial")
        history = result.history
        with h5py.File(tmp, "w") as h5:
            h5.attrs["format"] = FORMAT
            h5.attrs["results"] = json.dumps(result.summary())
            h5.attrs["twin"] = json.dumps(state.get("twin_summary", {}))
            h5.attrs["events"] = json.dumps(state.get("events", []))  # every fault met while capturing
            for key, value in provenance.items():
                h5.attrs[key] = json.dumps(value, default=str)
            group = h5.create_group("history")
            group.create_dataset("stage", data=np.array([h["stage"] for h in history], dtype=h5py.string_dtype()))
            group.create_dataset("bench_frames", data=np.array([h["bench_frames"] for h in history], dtype=np.int64))
            group.create_dataset("accuracy", data=np.array([h["accuracy"] for h in history], dtype=np.float64))
        tmp.replace(path)
        plot_history(history, result.digital, path.with_suffix(".png"))
        return path

    @staticmethod
    def read(path: Path) -> dict[str, Any]:
        with h5py.File(path, "r") as h5:
            if h5.attrs.get("format") != FORMAT:
                raise FineTuneRecordError(f"{path} is not a labctl fine-tuning record")
            return {
                "results": json.loads(h5.attrs["results"]),
                "twin": json.loads(h5.attrs["twin"]),
                "events": json.loads(h5.attrs["events"]),
                "history": [
                    {"stage": s.decode() if isinstance(s, bytes) else str(s), "bench_frames": int(f), "accuracy": float(a)}
                    for s, f, a in zip(h5["history/stage"][...], h5["history/bench_frames"][...], h5["history/accuracy"][...])
                ],
            }


def plot_history(history: list[dict[str, Any]], digital: float, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    frames = [h["bench_frames"] for h in history]
    acc = [100 * h["accuracy"] for h in history]
    ax.plot(frames, acc, "o-", label="optical (held out)")
    for h, x, y in zip(history, frames, acc):
        ax.annotate(h["stage"], (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.axhline(100 * digital, color="gray", linestyle="--", label="digital student")
    ax.set_xlabel("bench frames used for training")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("in-situ fine-tuning")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
