"""The two mask-export paths compared on the calibrated simulated bench.

(a) an SCLC student (KD) collapsed into its filter bank, tiled with phase ramps and encoded phase
    only: double-phase, iterative (data-free) and optimised through the twin;
(b) an optics-aware student (KD), whose phase mask is shown as trained.

Each mask runs through the runner on the test split; the figure of merit is optical accuracy against
the same model's digital accuracy.

Usage: python benchmarks/mask_export.py [--data SPEC] [--seed S] [--test-limit N]
Last line: JSON with sclc_digital, sclc_double_phase, sclc_iterative, sclc_optimised, optics_aware_digital,
optics_aware_optical (fractions) and the export seconds of each path.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

from drivers.bench import BenchSpec
from labctl.data import load_dataset


def main() -> None:
    from calibration.run import calibrate_all
    from labctl.masks.export import export_masks
    from labctl.models.bench_layout import layout_for_bench
    from labctl.optics.layout import OpticalLayout
    from labctl.records.report import build_report
    from labctl.runner.session import RunOptions, run_masks
    from labctl.training.loop import TrainSettings
    from labctl.training.train import train_student, train_teacher

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--train-limit", type=int, default=None)
    parser.add_argument("--test-limit", type=int, default=None)
    args = parser.parse_args()
    warnings.simplefilter("ignore", UserWarning)
    data = load_dataset(args.data)
    result: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        settings = TrainSettings(epochs=args.epochs, seed=args.seed, train_limit=args.train_limit)
        teacher = train_teacher(data, settings, work / "teacher")
        sclc = train_student(data, teacher.model, settings, kind="sclc", out_dir=work / "sclc", teacher_path=teacher.path,
                             channels=(args.channels,))
        layout = layout_for_bench(BenchSpec.default(), data.size, args.channels)
        optics = train_student(data, teacher.model, settings, kind="optics_aware", out_dir=work / "optics",
                               teacher_path=teacher.path, layout=layout)
        result["sclc_digital"] = sclc.metrics["accuracy"]
        result["optics_aware_digital"] = optics.metrics["accuracy"]
        print(f"teacher {teacher.metrics}, SCLC (KD) {sclc.metrics}, optics-aware (KD) {optics.metrics}", flush=True)
        calibrate_all(BenchSpec.default(), work / "calibration")
        bench = BenchSpec.from_file(work / "calibration" / "bench.toml")
        for name, path, kwargs in (
            ("sclc_double_phase", sclc.path, {"encoding": "double-phase"}),
            ("sclc_iterative", sclc.path, {"encoding": "iterative"}),
            ("sclc_optimised", sclc.path, {"encoding": "optimised", "data": data}),
            ("optics_aware_optical", optics.path, {}),
        ):
            t0 = time.perf_counter()
            masks = export_masks(path, bench, work / f"{name}.h5", **kwargs)
            result[f"{name}_export_s"] = round(time.perf_counter() - t0, 1)
            _, record = run_masks(bench, work / f"{name}.h5", data, work / f"run_{name}.h5", options=RunOptions(limit=args.test_limit))
            result[name] = build_report(record).metrics["accuracy"]
            extra = {k: masks.extra[k] for k in ("match_before", "match_after") if k in masks.extra}
            print(f"{name}: optical accuracy {result[name]:.4f} (export {result[f'{name}_export_s']} s) {extra}", flush=True)
    print(json.dumps({k: round(v, 4) for k, v in result.items()}))


if __name__ == "__main__":
    main()
