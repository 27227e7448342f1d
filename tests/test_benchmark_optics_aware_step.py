"""benchmarks/optics_aware_step.py on a tiny budget: its JSON contract, and the two ways agreeing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "optics_aware_step.py"


def _bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--threads", "1", *args], capture_output=True, text=True, timeout=300)


def test_times_both_ways_and_finds_them_equal() -> None:
    result = _bench("--size", "16", "--channels", "30", "--batch-size", "4", "--steps", "1", "--warmup", "1")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["channels"], summary["batch_size"], summary["threads"]) == (30, 4, 1)
    assert summary["frames_per_input"] >= 1 and summary["step_ms_frames"] > 0 and summary["step_ms_read_groups"] > 0
    assert summary["speedup"] == pytest.approx(summary["step_ms_frames"] / summary["step_ms_read_groups"], rel=0.03)  # rounded figures
    assert summary["readout_rel_err"] < 1e-4 and summary["gradient_rel_err"] < 1e-4
    assert "read_groups:" in result.stdout


def test_refuses_no_steps() -> None:
    refused = _bench("--steps", "0")
    assert refused.returncode != 0 and "--steps and --warmup must be >= 1" in refused.stderr
