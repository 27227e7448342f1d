"""What the input modulator's table gives end to end: one student and one mask file run through the lab
bench (mock_hw/lab_bench.toml, its input modulator a DMD or an LC cell) three times, with the input
shown linearly (gray = amplitude·(L−1)), through the table the input-response calibration made, and
through a table of √ relative intensity (the gray of the wanted mean intensity: right for an LC cell,
wrong for binary mirrors, whose mean field is linear in gray; calibration/input_response.py).

The bench is calibrated in full (``calibrate_all``), the teacher and the optics-aware student trained
as benchmarks/insitu.py does (digits, 12 and 10 epochs, 16 channels, for the calibrated bench), the
masks exported once; only the bench file's input_response entry differs between the runs.

Usage: python benchmarks/input_tables.py [--modulator dmd|lc] [--seed 0] [--threads 1] [--out DIR]
Last line: JSON with the student's accuracy on its twin and the runner's accuracy per table.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from calibration.records import CalibrationRecord, load_record
from calibration.run import calibrate_all
from drivers.bench import BenchSpec
from labctl.data import load_dataset
from labctl.masks.export import export_masks
from labctl.models.bench_layout import layout_for_bench
from labctl.records.report import build_report
from labctl.runner.session import run_masks
from labctl.training.loop import TrainSettings
from labctl.training.train import train_student, train_teacher

sys.path.insert(0, str(Path(__file__).resolve().parent))

import insitu  # noqa: E402

LAB = Path(__file__).resolve().parents[1] / "mock_hw" / "lab_bench.toml"


def lab_bench_text(modulator: str, seed: int) -> str:
    text = insitu.bench_file_for_seed(LAB.read_text(), seed, 0.0, 1.0)
    if modulator == "lc":
        text = re.sub(r'^modulator = "dmd"', 'modulator = "lc"', text, flags=re.MULTILINE)
        text = re.sub(r"^pwm_period_s = .*\n", "", text, flags=re.MULTILINE)
    return text


def sqrt_intensity_record(record: CalibrationRecord) -> CalibrationRecord:
    """``record`` with the table of √ relative intensity (``amplitude``) in place of its own."""
    targets = np.linspace(0, 1, record.arrays["table_gray"].size)
    table = np.abs(record.arrays["amplitude"][None, :] - targets[:, None]).argmin(axis=1).astype(np.uint16)
    return CalibrationRecord(kind=record.kind, device=record.device, wavelength_m=record.wavelength_m,
                             method=record.method + "; table of √ relative intensity", params=record.params,
                             residuals=record.residuals, arrays={**record.arrays, "table_gray": table},
                             id=record.id + "-sqrt")


def run(modulator: str, seed: int, work: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    (work / "bench.toml").write_text(lab_bench_text(modulator, seed))
    paths = calibrate_all(BenchSpec.from_file(work / "bench.toml"), work / "cal")
    calibrated = work / "cal" / "bench.toml"
    data = load_dataset("digits")
    torch.manual_seed(seed)
    teacher = train_teacher(data, TrainSettings(epochs=12, seed=seed), work / "teacher")
    layout = layout_for_bench(BenchSpec.from_file(calibrated), data.size, 16)
    student = train_student(data, teacher.model, TrainSettings(epochs=10, seed=seed), kind="optics_aware",
                            out_dir=work / "student", teacher_path=teacher.path, layout=layout)
    masks = work / "masks.h5"
    export_masks(student.path, BenchSpec.from_file(calibrated), masks)
    sqrt_path = sqrt_intensity_record(load_record(paths["input_response"])).save(work / "cal")
    text = calibrated.read_text()
    variants = {
        "linear": re.sub(r"^input_response = .*\n", "", text, flags=re.MULTILINE),
        "calibrated": text,
        "sqrt_intensity": re.sub(r"^input_response = .*$", f'input_response = "{sqrt_path.name}"', text, flags=re.MULTILINE),
    }
    out = {"modulator": modulator, "seed": seed, "model": load_record(paths["input_response"]).params["model"],
           "student_twin": student.metrics["accuracy"]}
    for name, body in variants.items():
        bench_file = work / "cal" / f"bench-{name}.toml"
        bench_file.write_text(body)
        start = time.perf_counter()
        run_masks(BenchSpec.from_file(bench_file), masks, data, work / f"run-{name}.h5")
        out[name] = build_report(work / f"run-{name}.h5").metrics["accuracy"]
        print(f"{name}: accuracy {out[name]:.4f} ({time.perf_counter() - start:.0f} s)", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modulator", choices=("dmd", "lc"), default="dmd")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own choice)")
    parser.add_argument("--out", type=Path, default=None, help="keep the work here (default: a temporary folder)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.out is not None:
        print(json.dumps(run(args.modulator, args.seed, args.out)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run(args.modulator, args.seed, Path(tmp))))


if __name__ == "__main__":
    main()
