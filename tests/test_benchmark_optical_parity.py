"""benchmarks/optical_parity.py on a tiny budget and a small simulated bench: its JSON contract."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import bench_toml

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "optical_parity.py"
TINY = ["--data", "digits", "--size", "16", "--seeds", "0", "--epochs", "1", "--train-limit", "200", "--test-limit", "24",
        "--threads", "1", "--channels", "4", "--backend-pool", "4", "--hidden", "16", "--backend-conv", "0",
        "--teacher-width", "4", "--optimise-steps", "2"]


def test_trains_calibrates_exports_and_runs_every_student_through_the_bench(tmp_path: Path) -> None:
    bench = tmp_path / "bench.toml"
    bench.write_text(bench_toml())
    result = subprocess.run([sys.executable, str(SCRIPT), *TINY, "--bench", str(bench), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    keys = ("teacher", "sclc_kd_digital", "sclc_kd_optical", "optics_aware_digital", "optics_aware_optical")
    assert all(0.0 <= summary[k] <= 1.0 for k in keys)
    sclc_paths = ("sclc_double_phase", "sclc_iterative", "sclc_optimised")
    # the SCLC + KD student's optical figure is its default (auto) export's: one of the iterative and
    # optimised masks, chosen by the twin check recorded beside it
    [chosen] = summary["sclc_auto_encoding"]
    assert chosen in ("sclc_iterative", "sclc_optimised") and summary["sclc_kd_optical"] == summary[f"{chosen}_optical"]
    check = summary["per_seed"][0]["sclc_auto_twin_check"]
    assert set(check) in ({"iterative"}, {"iterative", "optimised"}) and check["iterative"]["images"] > 0
    assert summary["frames_per_input"] == {**dict.fromkeys(sclc_paths, 1), "optics_aware": 1}
    assert summary["backend_mflops"] > 0 and summary["optics_aware_backend_mflops"] == summary["backend_mflops"]
    assert summary["seconds"] > 0 and summary["test_images"] == 24
    for name in (*sclc_paths, "optics_aware"):
        assert (tmp_path / "out" / "seed0" / f"run_{name}.h5").is_file()
    # the optics-aware student started from the SCLC + KD student and was distilled from it
    assert summary["optics_start"] == "sclc" and summary["optics_kd_from"] == "sclc"
    doc = json.loads((tmp_path / "out" / "seed0" / "optics_aware" / "model.json").read_text())
    assert Path(doc["started_from"]).parent == tmp_path / "out" / "seed0" / "sclc_kd" == Path(doc["teacher"]).parent


def test_missing_saved_teacher_is_named(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), *TINY, "--teachers", str(tmp_path), "--out", str(tmp_path / "o")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and f"no saved teacher at {tmp_path / 'seed0' / 'teacher'}" in result.stderr
