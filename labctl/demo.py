"""``labctl demo``: the whole method on a (simulated) bench, end to end, in a few minutes.

Train a nonlinear teacher, SCLC students without and with KD, and an optics-aware student (KD);
calibrate the bench; export the optics-aware student's mask for the bench as it comes
(uncalibrated) and as calibrated; run both through the runner; print one table and write
``summary.json``. Every figure is measured in this run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers.bench import BenchSpec
from labctl.data.dataset import Dataset


@dataclass
class DemoSettings:
    teacher_epochs: int = 10
    student_epochs: int = 6
    optics_epochs: int = 6
    channels: int = 16  # optical channels (camera tiles)
    train_limit: int | None = None  # first N training images (None: all)
    test_limit: int | None = None  # first N test images through the bench (None: all)
    seed: int = 0
    device: str = "cpu"  # torch device for training and the simulated bench's physics (a resolved --device)


def run_demo(
    spec: BenchSpec,
    data: Dataset,
    out: str | Path,
    settings: DemoSettings = DemoSettings(),
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the demo; returns the summary also written to ``out/summary.json``."""
    import torch

    from calibration.run import calibrate_all
    from labctl.bench_device import simulated_on
    from labctl.masks.export import export_masks
    from labctl.models.bench_layout import layout_for_bench
    from labctl.optics.layout import OpticalLayout
    from labctl.records.report import build_report
    from labctl.runner.session import RunOptions, run_masks
    from labctl.training.distributed import Processes
    from labctl.training.loop import TrainSettings
    from labctl.training.train import train_student, train_teacher

    device = torch.device(settings.device)
    on_device = Processes(device=device)
    spec = simulated_on(spec, device)
    out = Path(out)
    if (out / "summary.json").exists():
        raise FileExistsError(f"{out} already holds a demo (summary.json); choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    timings: dict[str, float] = {}

    def stage(name: str, t0: float) -> None:
        timings[name] = round(time.perf_counter() - t0, 1)

    base = TrainSettings(epochs=settings.teacher_epochs, seed=settings.seed, train_limit=settings.train_limit)
    t0 = time.perf_counter()
    log(f"data {data.describe()}")
    teacher = train_teacher(data, base, out / "teacher", processes=on_device)
    stage("teacher", t0)
    log(f"teacher: {teacher.metrics} ({timings['teacher']} s)")
    students = {}
    for name, kd in (("student_nokd", False), ("student_kd", True)):
        t0 = time.perf_counter()
        result = train_student(
            data, teacher.model if kd else None, TrainSettings(epochs=settings.student_epochs, seed=settings.seed,
                                                               train_limit=settings.train_limit),
            kind="sclc", out_dir=out / name, teacher_path=teacher.path if kd else None, processes=on_device,
        )
        students[name] = result
        stage(name, t0)
        log(f"SCLC student {'with' if kd else 'without'} KD: {result.metrics} ({timings[name]} s)")
    t0 = time.perf_counter()
    layout = layout_for_bench(spec, data.size, settings.channels)
    optical = train_student(
        data, teacher.model, TrainSettings(epochs=settings.optics_epochs, seed=settings.seed, train_limit=settings.train_limit),
        kind="optics_aware", out_dir=out / "optics_aware", teacher_path=teacher.path, processes=on_device, layout=layout,
    )
    stage("optics_aware", t0)
    log(f"optics-aware student (KD, digital twin): {optical.metrics} ({timings['optics_aware']} s)")

    t0 = time.perf_counter()
    calibrate_all(spec, out / "calibration")
    calibrated = simulated_on(BenchSpec.from_file(out / "calibration" / "bench.toml"), device)
    stage("calibration", t0)
    log(f"bench calibrated: {out / 'calibration' / 'bench.toml'} ({timings['calibration']} s)")

    runs: dict[str, dict[str, Any]] = {}
    for name, bench_spec in (("uncalibrated", spec), ("calibrated", calibrated)):
        t0 = time.perf_counter()
        masks = out / f"masks_{name}.h5"
        export_masks(optical.path, bench_spec, masks)
        summary, record = run_masks(bench_spec, masks, data, out / f"run_{name}.h5",
                                    options=RunOptions(limit=settings.test_limit))
        report = build_report(record)
        runs[name] = {"metrics": report.metrics, "frames_per_s": summary.frames_per_s,
                      "camera_frames_per_s": report.camera_frames_per_s}
        stage(f"run_{name}", t0)
        log(f"optical, {name} bench: {report.metrics} at {summary.frames_per_s:.1f} frames/s ({timings[f'run_{name}']} s)")

    key = "accuracy" if data.task == "classification" else "iou"
    summary_doc = {
        "data": data.spec,
        "metric": key,
        "teacher": teacher.metrics.get(key),
        "student_nokd": students["student_nokd"].metrics.get(key),
        "student_kd": students["student_kd"].metrics.get(key),
        "optics_aware_digital": optical.metrics.get(key),
        "optical_uncalibrated": runs["uncalibrated"]["metrics"].get(key),
        "optical_calibrated": runs["calibrated"]["metrics"].get(key),
        "frames_per_s": round(runs["calibrated"]["frames_per_s"], 1),
        "camera_frames_per_s": runs["calibrated"]["camera_frames_per_s"],
        "seconds": round(time.perf_counter() - start, 1),
        "timings_s": timings,
        "bench": str(spec.source),
        "settings": vars(settings),
    }
    (out / "summary.json").write_text(json.dumps(summary_doc, indent=2))
    return summary_doc
