"""Does what runs in light match what runs in silicon? For each seed: a teacher, the default SCLC
student distilled from it, and an optics-aware student of the same back-end size; the bench is
calibrated; each student is exported (the SCLC all three ways: double-phase, iterative and optimised
through the twin, and by the default ``auto`` choice; see labctl.masks.export) and the test split runs through the runner on the
calibrated simulated bench.

    python benchmarks/optical_parity.py --data idx:DIR                    # e.g. MNIST or Fashion-MNIST IDX files
    python benchmarks/optical_parity.py --data digits --seeds 0 --epochs 2 --test-limit 200   # quick

Last line: JSON with ``teacher``, ``sclc_kd_digital``, ``sclc_kd_optical`` (the default export's,
``labctl export-masks``' ``auto`` encoding, which picks between the iterative and the optimised one
by a check through the twin on training images; ``sclc_auto_encoding`` says which), ``optics_aware_digital``, ``optics_aware_optical`` (fractions, means over seeds),
``frames_per_input`` (camera frames one input costs, per export), ``backend_mflops`` and
``optics_aware_backend_mflops`` (each student's electronic MFLOP per image, counted as the demo does) and ``seconds``; per-seed figures and every
export path beside them. Digital accuracies are measured on the same test images the bench sees.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import click  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from calibration.run import calibrate_all  # noqa: E402
from drivers.bench import BenchSpec  # noqa: E402
from labctl.cli.train import CLASSIFIER_SCLC_SIZE, backend_conv_arch  # noqa: E402
from labctl.data import load_dataset  # noqa: E402
from labctl.demo import electronic_mflops  # noqa: E402
from labctl.masks.export import export_masks  # noqa: E402
from labctl.masks.mask_file import MaskFile  # noqa: E402
from labctl.masks.optimise import PhaseOptimisation  # noqa: E402
from labctl.models.bench_layout import layout_for_bench  # noqa: E402
from labctl.models.checkpoint import load_checkpoint  # noqa: E402
from labctl.models.student import default_kernel_support  # noqa: E402
from labctl.records.report import build_report  # noqa: E402
from labctl.runner.session import RunOptions, run_masks  # noqa: E402
from labctl.training.loop import TrainSettings  # noqa: E402
from labctl.training.metrics import evaluate  # noqa: E402
from labctl.training.train import train_student, train_teacher  # noqa: E402

#: the exports of each seed: (name, student, encoding)
EXPORTS = (("sclc_double_phase", "sclc", "double-phase"), ("sclc_iterative", "sclc", "iterative"),
           ("sclc_optimised", "sclc", "optimised"), ("optics_aware", "optics_aware", "iterative"))
SCLC_EXPORTS = tuple(name for name, kind, _ in EXPORTS if kind == "sclc")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits", help="data spec: digits | idx:DIR | ... (classification)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--bench", type=Path, default=None, help="bench file (default: the embedded simulated bench)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs for every model (default: the per-model options)")
    parser.add_argument("--teacher-epochs", type=int, default=12)
    parser.add_argument("--student-epochs", type=int, default=12)
    parser.add_argument("--optics-epochs", type=int, default=12)
    parser.add_argument("--teachers", type=Path, default=None,
                        help="reuse teachers saved by an earlier --out (DIR/seed<N>/teacher) or by benchmarks/distillation.py")
    parser.add_argument("--optics-start", choices=("sclc", "ramps"), default="sclc",
                        help="start the optics-aware student from the SCLC + KD student (its filters and back end), or from random ramps")
    parser.add_argument("--optics-kd-from", choices=("sclc", "teacher"), default="sclc",
                        help="distil the optics-aware student from the SCLC + KD student (the digital model it is to match) or from the teacher")
    parser.add_argument("--phase-lr-scale", type=float, default=TrainSettings.phase_lr_scale, help="the SLM phase's learning-rate multiplier")
    parser.add_argument("--teacher-width", type=int, default=32)
    parser.add_argument("--channels", type=int, default=int(CLASSIFIER_SCLC_SIZE["channels"]), help="optical channels of both students")
    parser.add_argument("--kernel-support", type=int, default=None,
                        help="the SCLC student's spatial kernel limit (labctl train student --kernel-support; 0: free filters; "
                             "default: labctl train student's, about a third of the image side)")
    parser.add_argument("--backend-pool", type=int, default=CLASSIFIER_SCLC_SIZE["backend_pool"])
    parser.add_argument("--hidden", type=int, default=CLASSIFIER_SCLC_SIZE["hidden"])
    parser.add_argument("--backend-conv", type=int, default=None, help=f"default {CLASSIFIER_SCLC_SIZE['backend_conv']}; 0: none")
    parser.add_argument("--backend-conv-layers", type=int, default=None)
    parser.add_argument("--size", type=int, default=None, help="resize images (default: as stored)")
    parser.add_argument("--train-limit", type=int, default=None, help="use only the first N training images")
    parser.add_argument("--test-limit", type=int, default=None, help="run only the first N test images (default: all)")
    parser.add_argument("--optimise-steps", type=int, default=PhaseOptimisation.steps, help="steps of the optimised SCLC encoding")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, required=True, help="folder for checkpoints, calibration, masks and run records")
    args = parser.parse_args()
    if args.teachers is not None:
        missing = [str(args.teachers / f"seed{seed}" / "teacher") for seed in args.seeds
                   if not (args.teachers / f"seed{seed}" / "teacher").is_dir()]
        if missing:
            parser.error(f"--teachers {args.teachers}: no saved teacher at {', '.join(missing)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    data = load_dataset(args.data, args.size)
    if data.task != "classification":
        parser.error(f"--data {args.data} is a {data.task} set; the parity benchmark scores classification accuracy")
    try:
        arch = {"channels": (args.channels,), "backend_pool": args.backend_pool, "hidden": args.hidden} | backend_conv_arch(
            data.task, args.data, args.backend_conv, args.backend_conv_layers, CLASSIFIER_SCLC_SIZE)
    except click.UsageError as refused:
        parser.error(refused.message)
    spec = BenchSpec.default() if args.bench is None else BenchSpec.from_file(args.bench)
    print(data.describe(), flush=True)
    t0 = time.perf_counter()
    calibrate_all(spec, args.out / "calibration")
    calibrated = BenchSpec.from_file(args.out / "calibration" / "bench.toml")
    print(f"bench calibrated in {time.perf_counter() - t0:.0f} s: {args.out / 'calibration' / 'bench.toml'}", flush=True)
    test = data.test if args.test_limit is None else data.test.subset(torch.arange(min(args.test_limit, len(data.test))))
    channels = arch["channels"][-1]
    if args.kernel_support is None:
        args.kernel_support = default_kernel_support(data.task, data.size)
    sclc_arch = arch | ({"kernel_support": args.kernel_support} if args.kernel_support else {})
    layout = layout_for_bench(calibrated, data.size, channels)

    per_seed: list[dict] = []
    for seed in args.seeds:
        root = args.out / f"seed{seed}"
        settings = {name: TrainSettings(epochs=args.epochs or epochs, seed=seed, train_limit=args.train_limit, phase_lr_scale=args.phase_lr_scale)
                    for name, epochs in (("teacher", args.teacher_epochs), ("student", args.student_epochs),
                                         ("optics", args.optics_epochs))}
        if args.teachers is not None:
            teacher_path = args.teachers / f"seed{seed}" / "teacher"
            teacher_model = load_checkpoint(teacher_path).model.eval()
        else:
            trained = train_teacher(data, settings["teacher"], root / "teacher", width=args.teacher_width)
            teacher_path, teacher_model = trained.path, trained.model
        sclc = train_student(data, teacher_model, settings["student"], "sclc", root / "sclc_kd", teacher_path=teacher_path, **sclc_arch)
        optics_arch = {"layout": layout} | ({} if args.optics_start == "sclc" else {k: v for k, v in arch.items() if k != "channels"})
        optics_kd, optics_kd_path = (sclc.model, sclc.path) if args.optics_kd_from == "sclc" else (teacher_model, teacher_path)
        students = {
            "sclc": sclc,
            "optics_aware": train_student(
                data, optics_kd, settings["optics"], "optics_aware", root / "optics_aware", teacher_path=optics_kd_path,
                start_from=(sclc.model, sclc.path) if args.optics_start == "sclc" else None, **optics_arch,
            ),
        }
        row = {"seed": seed, "teacher": evaluate(teacher_model, test, "classification")["accuracy"]}
        for kind, student in students.items():
            row[f"{kind}_digital"] = evaluate(student.model, test, "classification")["accuracy"]
        for name, kind, encoding in EXPORTS:
            t0 = time.perf_counter()
            masks_path = root / f"masks_{name}.h5"
            masks = export_masks(students[kind].path, calibrated, masks_path, encoding=encoding, data=data,
                                 optimisation=PhaseOptimisation(steps=args.optimise_steps, seed=seed), overwrite=True)
            summary, record = run_masks(calibrated, masks_path, data, root / f"run_{name}.h5", options=RunOptions(limit=args.test_limit))
            row[f"{name}_optical"] = build_report(record).metrics["accuracy"]
            row[f"{name}_frames_per_input"] = masks.frames_per_input
            row[f"{name}_inputs_per_s"] = round(summary.frames_per_s, 1)
            print(f"seed {seed}  {name:18s} digital {row[f'{kind}_digital']:.4f}  optical {row[f'{name}_optical']:.4f}  "
                  f"({masks.frames_per_input} frame(s) per input, {time.perf_counter() - t0:.0f} s)", flush=True)
        auto = export_masks(students["sclc"].path, calibrated, root / "masks_sclc_auto.h5", data=data,
                            optimisation=PhaseOptimisation(steps=args.optimise_steps, seed=seed), overwrite=True)
        chosen = f"sclc_{auto.method.removeprefix('sclc-').replace('-', '_')}"
        if not np.array_equal(MaskFile.load(root / f"masks_{chosen}.h5").gray, MaskFile.load(root / "masks_sclc_auto.h5").gray):
            raise SystemExit(f"seed {seed}: the auto export differs from the {chosen} export it chose; the paths diverged")
        row["sclc_auto_encoding"], row["sclc_auto_twin_check"] = chosen, auto.extra.get("twin_check")
        row["sclc_kd_optical"] = row[f"{chosen}_optical"]  # the same mask: its run above
        print(f"seed {seed}  sclc_auto -> {chosen} (twin check: {auto.extra.get('twin_check')})", flush=True)
        per_seed.append(row)

    def mean(key: str) -> float:
        return round(statistics.fmean(r[key] for r in per_seed), 5)

    mflops = {kind: electronic_mflops(student.model) for kind, student in students.items()}  # the last seed's; same arch each seed
    result = {
        "teacher": mean("teacher"), "sclc_kd_digital": mean("sclc_digital"), "sclc_kd_optical": mean("sclc_kd_optical"),
        "optics_aware_digital": mean("optics_aware_digital"), "optics_aware_optical": mean("optics_aware_optical"),
        **{f"{name}_optical": mean(f"{name}_optical") for name in SCLC_EXPORTS},
        "sclc_auto_encoding": [r["sclc_auto_encoding"] for r in per_seed],
        "frames_per_input": {name: per_seed[0][f"{name}_frames_per_input"] for name, _, _ in EXPORTS},
        "backend_mflops": round(mflops["sclc"], 3), "optics_aware_backend_mflops": round(mflops["optics_aware"], 3), "seconds": round(time.perf_counter() - start, 1),
        "optics_start": args.optics_start, "optics_kd_from": args.optics_kd_from, "kernel_support": args.kernel_support, "data": args.data, "seeds": args.seeds, "test_images": len(test), "channels": channels, "per_seed": per_seed,
        "bench": str(spec.source),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
