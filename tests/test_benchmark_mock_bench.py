"""benchmarks/mock_bench.py on a tiny budget: its JSON contract, per device."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "mock_bench.py"


def _bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--seconds", "0.2", *args], capture_output=True, text=True, timeout=300)


def test_reports_frames_per_second_per_batch_and_the_fft_floor_on_its_device() -> None:
    # one thread: on a shared machine the floor's own FFTs, split over threads, can stall at every
    # barrier (two 360x360 FFTs at 23 frames/s measured), and the simulator renders on one thread
    result = _bench("--batches", "1,4", "--device", "cpu", "--threads", "1")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    per_batch = ("fps", "fft_floor_fps", "fft_floor_slm_grid_fps", "floor_ratio")
    assert set(summary) == {"bench", "device", "threads", "sim_grid"} | {f"{k}_batch{b}" for k in per_batch for b in (1, 4)}
    assert summary["device"] == "cpu" and summary["sim_grid"] == "360x360" and summary["bench"] == "default"
    assert summary["threads"] == 1
    for b in (1, 4):
        # a frame costs its two FFTs at the simulation grid and more: the simulator cannot beat that floor
        assert 0 < summary[f"fps_batch{b}"] < summary[f"fft_floor_fps_batch{b}"]
        fps, floor = summary[f"fps_batch{b}"], summary[f"fft_floor_fps_batch{b}"]
        rounding = (0.05 / fps + 0.05 / floor) * fps / floor + 5e-4  # the JSON rounds fps to 0.1, ratios to 0.001
        assert abs(summary[f"floor_ratio_batch{b}"] - fps / floor) <= rounding


def test_measures_a_bench_file_on_pinned_threads() -> None:
    """The lab bench (the embedded default's devices with lab realism): its own simulation grid."""
    lab = Path(__file__).resolve().parents[1] / "mock_hw" / "lab_bench.toml"
    result = _bench("--batches", "2", "--device", "cpu", "--threads", "1", "--bench", str(lab))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["bench"] == str(lab) and summary["threads"] == 1 and summary["sim_grid"] != "360x360"
    assert 0 < summary["fps_batch2"] < summary["fft_floor_fps_batch2"]


def test_refuses_a_gpu_that_is_not_there_and_bad_batches() -> None:
    import torch

    if not torch.cuda.is_available():
        refused = _bench("--device", "cuda")
        assert refused.returncode != 0 and "asked for a GPU" in refused.stderr
    assert "--batches must be" in _bench("--batches", "0").stderr
    assert "--threads must be" in _bench("--threads", "0").stderr
    assert "cannot read" in _bench("--bench", "/nonexistent/bench.toml").stderr
