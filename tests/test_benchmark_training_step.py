"""benchmarks/training_step.py on a tiny budget: its JSON contract and its projection."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "training_step.py"


def _bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--threads", "1", *args], capture_output=True, text=True, timeout=300)


def test_reports_step_times_and_projects_the_run_from_them() -> None:
    result = _bench(
        "--size", "16", "--steps", "3", "--warmup", "1", "--batch-size", "8", "--test-images", "100", "--epochs", "3", "--train-images", "12000",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["threads"], summary["size"], summary["batch_size"]) == (1, 16, 8)
    assert summary["device"] == ("cuda" if torch.cuda.is_available() else "cpu")  # --device auto
    for name in ("teacher", "student_nokd", "student_kd"):
        assert summary[f"step_ms_{name}"] > 0 and summary[f"eval_us_per_image_{name}"] > 0
        assert 0 <= summary[f"page_faults_per_step_{name}"] < 10_000  # a count; this run's buffers are too small to test reuse (test_training_allocator does)
        # 3 epochs of 12000 images, each 1500 steps of 8 and 100 test + 2048 recalibration images scored
        expected = 3 * (1500 * summary[f"step_ms_{name}"] / 1e3 + (100 + 2048) * summary[f"eval_us_per_image_{name}"] / 1e6)
        assert abs(summary[f"projected_seconds_{name}"] - expected) < 1.5
    assert "student_kd" in result.stdout and "ms (fastest" in result.stdout


def test_refuses_too_few_steps_or_no_warmup() -> None:
    for args in (["--steps", "1"], ["--warmup", "0"]):
        refused = _bench(*args)
        assert refused.returncode != 0 and "--steps must be >= 2 and --warmup >= 1" in refused.stderr
