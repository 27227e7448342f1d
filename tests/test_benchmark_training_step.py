"""benchmarks/training_step.py on a tiny budget: its JSON contract and its projection."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

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
    for name in ("teacher", "student_nokd", "student_kd"):
        assert summary[f"step_ms_{name}"] > 0 and summary[f"page_faults_per_step_{name}"] >= 0
        # 3 epochs of 12000 images are 4500 steps of 8, plus the scoring
        assert summary[f"projected_seconds_{name}"] >= math.floor(4500 * summary[f"step_ms_{name}"] / 1000) - 1
    assert "student_kd" in result.stdout and "ms (fastest" in result.stdout


def test_refuses_too_few_steps() -> None:
    refused = _bench("--steps", "1")
    assert refused.returncode != 0 and "--steps must be >= 2" in refused.stderr
