"""In-situ fine-tuning on simulated benches whose hidden optics differ from the twin.

The optics-aware student is trained (KD) on the ideal twin of the embedded bench. The bench it then
meets has a defocused and more misaligned camera, sensor noise, and an SLM shown through a phase
table that is off (the uncalibrated linear table, while the panel's true response is nonlinear and
does not reach exactly 2π); the camera and the registration are calibrated, as an operator would.
Then ``labctl finetune``'s session runs: back-end fine-tuning on captured frames, twin refinement and
physics-aware training of the mask, each pass over ``--fraction`` of the training set per epoch.

``--bench FILE`` runs on that bench file instead (e.g. mock_hw/lab_bench.toml, whose hidden
non-idealities lie outside the twin's model: aberrations, relay distortion, a DMD input, fringing,
flicker, drift, ...): each seed adds 10·seed to every device's seed, the file is used as it is (no
defocus or misalignment added unless asked), and by default every calibration runs (input
response, SLM phase, camera, registration) before the student is trained for the calibrated bench
(its phase levels), as an operator would; what is left for fine-tuning is model error.

Usage: python benchmarks/insitu.py [--data SPEC] [--seeds 0 1] [--defocus-um 250] [--misalignment 2]
       [--bench FILE] [--calibrate input_response slm_phase camera registration] [--threads 1]
       [--work DIR]
Last line: JSON with digital, optical_before, optical_backend_ft, optical_pat (means over seeds,
fractions) and bench_frames (training frames per run, mean), plus per-seed figures.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import tempfile
import time
import tomllib
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from calibration.records import KINDS
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


def bench_file_for_seed(text: str, seed: int, defocus_um: float, misalignment: float) -> str:
    """``text`` (a bench file) with 10·seed added to every device's seed, and the camera's defocus and
    misalignment set where they differ from a plain bench (0 µm, 1×)."""
    out, n = re.subn(r"^seed[ \t]*=[ \t]*(\d+)[ \t]*$", lambda m: f"seed = {int(m.group(1)) + 10 * seed}", text, flags=re.MULTILINE)
    if n == 0 and seed:
        raise RuntimeError("the bench file names no device seed to vary")
    extra = (f"defocus_m = {defocus_um * 1e-6}\n" if defocus_um else "") + (f"misalignment = {misalignment}\n" if misalignment != 1 else "")
    if extra:
        out, n = re.subn(r"^\[camera\][ \t]*\n", lambda m: m.group(0) + extra, out, count=1, flags=re.MULTILINE)
        if n != 1:
            raise RuntimeError("the bench file has no [camera] table to defocus or misalign")
    tomllib.loads(out)  # still a bench file
    return out


def _reused(folder: Path):
    """A checkpoint a previous run with the same --work wrote, as train_teacher/train_student return it."""
    from labctl.models.checkpoint import load_checkpoint
    from labctl.training.train import TrainResult

    ckpt = load_checkpoint(folder)
    print(f"{folder.name} reused from {folder}", flush=True)
    return TrainResult(ckpt.model, ckpt.meta.get("metrics", {}), ckpt.meta.get("history", []), ckpt.path)


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
    work.mkdir(parents=True, exist_ok=True)
    bench_file = work / "bench.toml"
    if args.bench is None:
        bench_file.write_text(mismatched_bench(args.defocus_um, args.misalignment, seed))
    else:
        bench_file.write_text(bench_file_for_seed(args.bench.read_text(), seed, args.defocus_um, args.misalignment))
    spec = BenchSpec.from_file(bench_file)
    start = time.perf_counter()
    stamp = {"bench": bench_file.read_text(), "calibrate": list(args.calibrate), "data": data.spec, "channels": args.channels,
             "teacher_epochs": args.teacher_epochs, "student_epochs": args.student_epochs, "train_limit": args.train_limit}
    stamp_file = work / "reuse.json"
    reuse = args.work is not None and stamp_file.exists() and json.loads(stamp_file.read_text()) == stamp
    if args.work is not None and stamp_file.exists() and not reuse:
        raise SystemExit(f"{work} holds a run of another bench, data or training settings; choose another --work")
    if reuse and (work / "calibration" / "bench.toml").exists():
        print(f"seed {seed}: calibration reused from {work / 'calibration'}", flush=True)
    else:
        calibrate_all(spec, work / "calibration", kinds=tuple(args.calibrate))
        print(f"seed {seed}: calibrated {', '.join(args.calibrate)} in {time.perf_counter() - start:.1f} s", flush=True)
    stamp_file.write_text(json.dumps(stamp))
    calibrated = BenchSpec.from_file(work / "calibration" / "bench.toml")
    # the student is designed for the bench as the operator knows it: the nominal bench, or the
    # calibrated one (its phase table's levels) when the phase was calibrated
    designed_for = calibrated if "slm_phase" in args.calibrate else BenchSpec.default()
    limit = args.train_limit
    torch.manual_seed(seed)
    if (work / "teacher" / "model.json").exists() and (work / "student" / "model.json").exists():  # only there when reused
        teacher, student = (_reused(work / name) for name in ("teacher", "student"))
    else:
        teacher = train_teacher(data, TrainSettings(epochs=args.teacher_epochs, seed=seed, train_limit=limit), work / "teacher")
        layout = layout_for_bench(designed_for, data.size, args.channels)
        student = train_student(data, teacher.model, TrainSettings(epochs=args.student_epochs, seed=seed, train_limit=limit),
                                kind="optics_aware", out_dir=work / "student", teacher_path=teacher.path, layout=layout)
    print(f"seed {seed}: teacher {teacher.metrics}, optics-aware student (twin) {student.metrics}", flush=True)
    masks = work / "masks.h5"
    if masks.exists():  # a previous run's export (with --work): made again from the same student and calibration
        masks.unlink()
    export_masks(student.path, calibrated, masks)
    # the operator knows what the input modulator is (not its hidden timing): a DMD's bench file says so
    modulator = "dmd" if spec.raw.get("input_slm", {}).get("realism", {}).get("modulator") == "dmd" else "amplitude"
    pat = PATConfig(epochs=args.pat_epochs, seed=seed)
    pat.phase_lr = pat.phase_lr if args.pat_phase_lr is None else args.pat_phase_lr
    pat.back_lr = pat.back_lr if args.pat_back_lr is None else args.pat_back_lr
    options = FineTuneOptions(fraction=args.fraction, heldout=args.heldout, seed=seed, pat=pat, input_modulator=modulator,
                              fresh_subsets=not args.same_subset)
    finetune = work / "finetune"
    if finetune.exists():  # a previous run's fine-tuning (with --work): fine-tuning starts afresh
        shutil.rmtree(finetune)
    result = FineTuneSession(calibrated, masks, None, data, finetune, None, options,
                             log=lambda m: print(f"  {m}", flush=True)).run()
    return result.summary()


def main() -> None:
    from labctl.insitu.pat import PATConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--bench", type=Path, default=None, help="bench file (default: the embedded bench, defocused and misaligned)")
    parser.add_argument("--calibrate", nargs="+", choices=KINDS, default=None,
                        help="calibrations run before export (default: camera registration; with --bench all)")
    parser.add_argument("--defocus-um", type=float, default=None, help="camera defocus (default: 250; with --bench 0)")
    parser.add_argument("--misalignment", type=float, default=None,
                        help="camera misalignment, times the default draw (default: 2; with --bench 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own choice)")
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--pat-epochs", type=int, default=PATConfig.epochs, help="physics-aware epochs, each over a fresh --fraction of the training set")
    parser.add_argument("--pat-phase-lr", type=float, default=None, help="physics-aware training's phase step (default: PATConfig's)")
    parser.add_argument("--pat-back-lr", type=float, default=None, help="physics-aware training's back-end step (default: PATConfig's)")
    parser.add_argument("--same-subset", action="store_true",
                        help="every pass over the same --fraction of the training set (default: a fresh one each epoch)")
    parser.add_argument("--teacher-epochs", type=int, default=12)
    parser.add_argument("--student-epochs", type=int, default=10)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--train-limit", type=int, default=None)
    parser.add_argument("--work", type=Path, default=None,
                        help="keep each seed's work folder here (DIR/seed<N>); a later run with the same bench, data and training "
                             "settings reuses its calibration, teacher and student and runs only the fine-tuning again")
    parser.add_argument("--heldout", type=int, default=None, help="test inputs to measure on (default: all)")
    args = parser.parse_args()
    lab = args.bench is not None
    if args.defocus_um is None:
        args.defocus_um = 0.0 if lab else 250.0
    if args.misalignment is None:
        args.misalignment = 1.0 if lab else 2.0
    if args.calibrate is None:
        args.calibrate = list(KINDS) if lab else ["camera", "registration"]
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_dataset(args.data)
    start = time.perf_counter()
    per_seed = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) if args.work is None else args.work
        for seed in args.seeds:
            result = one_seed(data, args, seed, root / f"seed{seed}")
            per_seed.append(result)
            print(f"seed {seed}: {result}", flush=True)
    keys = ("digital", "optical_before", "optical_backend_ft", "optical_pat")
    summary = {k: round(float(np.mean([r[k] for r in per_seed])), 4) for k in keys}
    summary["bench_frames"] = int(np.mean([r["bench_frames"] for r in per_seed]))
    summary["gap_before_pts"] = round(100 * (summary["digital"] - summary["optical_before"]), 2)
    summary["gap_after_pts"] = round(100 * (summary["digital"] - summary["optical_pat"]), 2)
    summary["train_images"] = len(data.train) if args.train_limit is None else min(args.train_limit, len(data.train))
    summary["seconds"] = round(time.perf_counter() - start, 1)
    summary["per_seed"] = per_seed
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
