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
    result = _bench("--batches", "1,4", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(summary) == {"device", "fps_batch1", "fps_batch4", "fft_floor_fps"} and summary["device"] == "cpu"
    # a frame costs its two FFTs and more: the simulator cannot beat the floor
    assert 0 < summary["fps_batch4"] < summary["fft_floor_fps"]


def test_refuses_a_gpu_that_is_not_there_and_bad_batches() -> None:
    import torch

    if not torch.cuda.is_available():
        refused = _bench("--device", "cuda")
        assert refused.returncode != 0 and "asked for a GPU" in refused.stderr
    assert "--batches must be" in _bench("--batches", "0").stderr
