"""benchmarks/distillation.py on a tiny budget: its JSON contract, and reuse of saved teachers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "distillation.py"
TINY = ["--data", "digits", "--size", "16", "--seeds", "0", "--epochs", "1", "--train-limit", "256", "--threads", "1",
        "--channels", "4", "--backend-pool", "4", "--hidden", "16"]


def _bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *TINY, *args], capture_output=True, text=True, timeout=300)


def test_reports_gap_recovered_and_reuses_saved_teachers(tmp_path: Path) -> None:
    # a teacher narrower than the default: a run that retrained instead of reusing it would score differently
    first = _bench("--teacher-width", "4", "--teacher-convs", "2", "--backend-conv", "3", "--backend-conv-layers", "1", "--out", str(tmp_path / "runs"))
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout.strip().splitlines()[-1])
    assert {"teacher", "student_nokd", "student_kd", "gap_recovered"} <= set(summary)
    assert (summary["backend_pool"], summary["hidden"], summary["channels"], summary["backend_conv"], summary["backend_conv_layers"]) == (4, 16, 4, 3, 1)
    assert summary["teacher_arch"] == {"depth": 3, "width": 4, "convs": 2}
    student = json.loads((tmp_path / "runs" / "seed0" / "student_kd" / "model.json").read_text())
    assert (student["config"]["backend_pool"], student["config"]["hidden"], student["config"]["backend_conv"]) == (4, 16, 3)
    assert student["config"]["backend_conv_layers"] == 1

    again = _bench("--teachers", str(tmp_path / "runs"))
    assert again.returncode == 0, again.stderr
    reused = json.loads(again.stdout.strip().splitlines()[-1])
    assert reused["teacher"] == summary["teacher"] and reused["teachers"] == str(tmp_path / "runs")
    assert reused["teacher_arch"] == summary["teacher_arch"]  # the saved teacher's, not the defaults
    assert reused["backend_conv_layers"] == 2  # the default student


def test_missing_saved_teacher_is_named(tmp_path: Path) -> None:
    result = _bench("--teachers", str(tmp_path))
    assert result.returncode != 0
    assert f"no saved teacher at {tmp_path / 'seed0' / 'teacher'}" in result.stderr


def test_segmentation_records_the_unet_teacher(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *TINY, "--data", "shapes", "--train-limit", "64"], capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["teacher_arch"] == {"levels": 2, "width": 32}  # the benchmark's --teacher-width
    assert summary["backend_conv"] == 0
    refused = subprocess.run([sys.executable, str(SCRIPT), *TINY, "--data", "shapes", "--backend-conv", "8"], capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0 and "--backend-conv-layers are for classification back ends; shapes is a segmentation set" in refused.stderr
