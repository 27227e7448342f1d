"""In-situ fine-tuning on simulated benches whose hidden optics differ from the twin.

The optics-aware student is trained (KD) on the ideal twin of the embedded bench. The bench it then
meets has a defocused and more misaligned camera, sensor noise, and an SLM shown through a phase
table that is off (the uncalibrated linear table, while the panel's true response is nonlinear and
does not reach exactly 2π); the camera and the registration are calibrated, as an operator would.
Then ``labctl finetune``'s session runs: back-end fine-tuning on captured frames, twin refinement and
physics-aware training of the mask, each pass over ``--fraction`` of the training set per epoch.

Usage: python benchmarks/insitu.py [--data SPEC] [--seeds 0 1] [--defocus-um 250] [--misalignment 2]
Last line: JSON with digital, optical_before, optical_backend_ft, optical_pat (means over seeds,
fractions) and bench_frames (training frames per run, mean), plus per-seed figures.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from drivers.bench import BenchSpec
from labctl.data import load_dataset


def mismatched_bench(defocus_um: float, misalignment: float, seed: int) -> str:
    text = resources.files("mock_hw").joinpath("default_bench.toml").read_text()
    text = text.replace("[camera]\ndriver = \"mock\"\nseed = 3\n",
                        f"[camera]\ndriver = \"mock\"\nseed = {3 + 10 * seed}\ndefocus_m = {defocus_um * 1e-6}\n"
                        f"misalignment = {misalignment}\n", 1)
    if f"seed = {3 + 10 * seed}" not in text:
        raise RuntimeError("the embedded bench file changed; update benchmarks/insitu.py")
    return text


def one_seed(data, args, seed: int, work: Path) -> dict:
    from calibration.run import calibrate_all
    from labctl.insitu.pat import PATConfig
    from labctl.insitu.session import FineTuneOptions, FineTuneSession
    from labctl.masks.export import export_masks
    from labctl.models.bench_layout import layout_for_bench
    from labctl.optics.layout import OpticalLayout
    from labctl.training.loop import TrainSettings
    from labctl.training.train import train_student, train_teacher

    torch.manual_seed(seed)
    nominal = BenchSpec.default()
    limit = args.train_limit
    teacher = train_teacher(data, TrainSettings(epochs=args.teacher_epochs, seed=seed, train_limit=limit), work / "teacher")
    layout = layout_for_bench(nominal, data.size, args.channels)
    student = train_student(data, teacher.model, TrainSettings(epochs=args.student_epochs, seed=seed, train_limit=limit),
                            kind="optics_aware", out_dir=work / "student", teacher_path=teacher.path, layout=layout)
    print(f"seed {seed}: teacher {teacher.metrics}, optics-aware student (twin) {student.metrics}", flush=True)
    bench_file = work / "bench.toml"
    bench_file.write_text(mismatched_bench(args.defocus_um, args.misalignment, seed))
    spec = BenchSpec.from_file(bench_file)
    calibrate_all(spec, work / "calibration", kinds=("camera", "registration"))
    calibrated = BenchSpec.from_file(work / "calibration" / "bench.toml")
    masks = work / "masks.h5"
    export_masks(student.path, calibrated, masks)
    options = FineTuneOptions(fraction=args.fraction, heldout=args.heldout, seed=seed, pat=PATConfig(epochs=args.pat_epochs, seed=seed))
    result = FineTuneSession(calibrated, masks, None, data, work / "finetune", None, options,
                             log=lambda m: print(f"  {m}", flush=True)).run()
    return result.summary()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--defocus-um", type=float, default=250.0)
    parser.add_argument("--misalignment", type=float, default=2.0, help="camera misalignment, times the default draw")
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--pat-epochs", type=int, default=3)
    parser.add_argument("--teacher-epochs", type=int, default=12)
    parser.add_argument("--student-epochs", type=int, default=10)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--train-limit", type=int, default=None)
    parser.add_argument("--heldout", type=int, default=None, help="test inputs to measure on (default: all)")
    args = parser.parse_args()
    data = load_dataset(args.data)
    start = time.perf_counter()
    per_seed = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            result = one_seed(data, args, seed, Path(tmp) / f"seed{seed}")
            per_seed.append(result)
            print(f"seed {seed}: {result}", flush=True)
    keys = ("digital", "optical_before", "optical_backend_ft", "optical_pat")
    summary = {k: round(float(np.mean([r[k] for r in per_seed])), 4) for k in keys}
    summary["bench_frames"] = int(np.mean([r["bench_frames"] for r in per_seed]))
    summary["gap_after_pts"] = round(100 * (summary["digital"] - summary["optical_pat"]), 2)
    summary["train_images"] = len(data.train) if args.train_limit is None else min(args.train_limit, len(data.train))
    summary["seconds"] = round(time.perf_counter() - start, 1)
    summary["per_seed"] = per_seed
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
