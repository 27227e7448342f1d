"""Shared pieces of the fuzz suite: one small trained optics-aware student with its mask file and a
finished run on the embedded digits (built once per session, about 10 s on 2 cores), and a small
synthetic run record that the record cases corrupt in every way they know.

Every case asserts a specific exception class and that its message names the file, column, table or
value at fault: bad input gets a clear refusal, never a traceback and never silent acceptance."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from drivers.bench import BenchSpec
from labctl.data import Dataset, load_dataset
from labctl.records.run_record import Column, RunRecord
from labctl.runner.loop import METADATA_COLUMNS
from tests.conftest import bench_toml

SIZE = 16
CHANNELS = 4
REPO = Path(__file__).resolve().parents[2]
#: columns of the synthetic record (as a classification run writes them)
RECORD_COLUMNS = [Column("prediction", (), "i8"), Column("logits", (4,), "f4"), *METADATA_COLUMNS, Column("label", (), "i8")]


@dataclass(frozen=True)
class Trained:
    root: Path
    bench_file: Path
    spec: BenchSpec
    data: Dataset
    student: Path  # the checkpoint's weights file
    masks: Path
    run: Path  # a finished 48-input run of ``masks`` on ``data``


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    from labctl.masks.export import export_masks
    from labctl.models.bench_layout import layout_for_bench
    from labctl.runner.session import RunOptions, run_masks
    from labctl.training.loop import TrainSettings
    from labctl.training.train import train_student

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("fuzz")
    bench_file = root / "bench.toml"
    bench_file.write_text(bench_toml(ideal=True, noise=False))
    spec = BenchSpec.from_file(bench_file)
    data = load_dataset("digits", size=SIZE)
    result = train_student(
        data, None, TrainSettings(epochs=1, batch_size=64, lr=1e-2, train_limit=128), kind="optics_aware",
        out_dir=root / "student", layout=layout_for_bench(spec, SIZE, CHANNELS),
    )
    masks = root / "masks.h5"
    export_masks(result.path, spec, masks)
    run = root / "run.h5"
    run_masks(spec, masks, data, run, options=RunOptions(batch_size=16, limit=48))
    torch.set_num_threads(threads)
    return Trained(root, bench_file, spec, data, result.path, masks, run)


def make_record(path: Path, n: int = 12, done: int | None = None, frames: bool = True, seed: int = 0) -> dict[str, np.ndarray]:
    """A classification run record with ``done`` (default all) of ``n`` rows written, two events
    and a readout; returns what was written, for comparison."""
    rng = np.random.default_rng(seed)
    k = n if done is None else done
    idx = np.arange(k)
    values = {
        "prediction": rng.integers(0, 4, k), "logits": rng.normal(size=(k, 4)).astype(np.float32), "frame_number": idx,
        "timestamp_s": idx * 0.01, "exposure_s": np.full(k, 1e-3), "label": rng.integers(0, 4, k),
    }
    shown = rng.integers(0, 4096, (k, 8, 8)).astype(np.uint16) if frames else None
    with RunRecord.create(path, n, RECORD_COLUMNS, {"task": "classification", "method": "optics-aware"},
                          frame_shape=(8, 8) if frames else None) as rec:
        rec.write_batch(idx, values, frames=shown)
        rec.log_event("timeout", "camera: no frame", 3)
        rec.log_event("disconnect", "camera: link lost", 7)
        rec.set_attr("readout", {"exposure_s": 1e-3, "gain": [1.0] * CHANNELS, "offset": [0.0] * CHANNELS})
    return values | ({"frames": shown} if frames else {})


def read_all(path: Path) -> dict[str, object]:
    """Everything a record holds, read through RunRecord (so every check runs)."""
    with RunRecord.open(path) as rec:
        out: dict[str, object] = {c.name: rec.column(c.name) for c in rec.columns}
        out |= {"done": rec.done, "events": rec.events(), "readout": rec.attr("readout")}
        if rec.has_frames:
            out["frames"] = rec.frames(slice(None))
    return out


def same(a: dict[str, object], b: dict[str, object]) -> bool:
    return a.keys() == b.keys() and all(
        np.array_equal(a[k], b[k]) if isinstance(a[k], np.ndarray) else a[k] == b[k] for k in a
    )


def python(code: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter at the repository root."""
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True, text=True, timeout=timeout,
    )
