"""``labctl demo``: the whole method on a (simulated) bench, end to end, in a few minutes.

Train a nonlinear teacher and SCLC students without and with KD; calibrate the bench; train an
optics-aware student through the calibrated bench's twin, started from the SCLC + KD student (its
filters, made phase only, and its back end) and distilled from it, so that what the SLM shows
learns to read as the digital student does; export its mask for the bench as it comes
(uncalibrated) and as calibrated; run both through the runner, side by side on a CPU (each run is
its own simulated bench and one thread's work); draw a figure of a few test inputs
through the calibrated bench (:mod:`labctl.demo_figure`); print one table and write
``summary.json``. Every figure is measured in this run; the electronic FLOPs per image beside each
accuracy are counted from the models' sizes (:mod:`labctl.models.efficiency`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drivers.bench import BenchSpec
from labctl.data.dataset import Dataset

if TYPE_CHECKING:
    from torch import nn

FIGURE_NAME = "demo.png"


def electronic_mflops(model: nn.Module) -> float | None:
    """Electronic MFLOP per image: the whole network for the teacher (its convolution stack, global
    pooling and MLP head), the back end for an SCLC or optics-aware student (its optical front end
    does no electronic FLOPs); counted analytically (:mod:`labctl.models.efficiency`). None for a
    segmentation model or a linear back end."""
    from labctl.models.efficiency import backend_flops, conv_stack_flops

    config = model.config
    if config.task != "classification" or (config.kind != "teacher" and config.linear_backend):
        return None
    if config.kind == "teacher":
        last = config.block_channels()[-1]
        head = 2 * last * config.hidden + 2 * config.hidden * config.num_classes
        return (conv_stack_flops(config) + head) / 1e6
    back = model.back
    channels = back.norm.num_features
    size = model.front.out_size if config.kind in ("sclc", "linear") else config.size
    return backend_flops(channels, size, min(config.backend_pool, size), config.hidden, config.num_classes,
                         config.backend_conv, config.backend_conv_layers) / 1e6


#: the SCLC students' architecture: `labctl train student`'s default for classification (32 channels;
#: back end pooled to 14 x 14, two 3 x 3 convolutions to 64 channels, 256 hidden units). On the
#: embedded Fashion-MNIST subset with the defaults below KD raised it over labels alone on seeds 0,
#: 1 and 2 (by 0.6, 0.1 and 0.6 points), where the smaller (16, 16) / 7 x 7 / 128 student without a
#: back-end convolution lost with KD on seeds 0 and 1 (README, Quick start).
#: `labctl train student`'s classification SCLC student, but with free filters (kernel_support 0): with
#: the default kernel limit (9 px) the demo took 246 s (452 CPU-s) on 2 cores, over its 4-minute budget,
#: and its KD student read no better than the one without KD (87.1 and 87.1 %, seed 0); free filters:
#: 233 s (417 CPU-s, a fresh clone's make demo), 88.1 against 86.7 %
DEMO_STUDENT = {"channels": (32,), "hidden": 256, "backend_pool": 14, "backend_conv": 64, "backend_conv_layers": 2,
                "kernel_support": 0}


@dataclass
class DemoSettings:
    teacher_epochs: int = 20
    student_epochs: int = 8
    optics_epochs: int = 3
    #: the optics-aware student (the SCLC + KD student's channels and back end) trains through the
    #: twin's physics, a full-frame FFT pair per image and channel group: on the first N training
    #: images only (None: all). On the demo's seed 0 (the SCLC + KD student 87.8 %), its twin read
    #: 84.2 % after 2 epochs on 3 000 images, 85.1 after 2 on 6 000, 84.9 after 4 on 3 000 and 86.4
    #: after 3 on all 6 000 — 71–77 s since the twin reads in cache-sized chunks through one sparse
    #: readout (labctl.optics.twin.FourFTwin.read_groups), where 2 on 3 000 took 72 s before
    optics_train_limit: int | None = None
    teacher_width: int = 32  # channels of the teacher's first block (doubled per block); `train teacher`'s default
    #: the SCLC students' architecture (labctl.training.train.student_for arguments)
    student_arch: dict[str, Any] = field(default_factory=lambda: dict(DEMO_STUDENT))
    train_limit: int | None = None  # first N training images (None: all)
    test_limit: int | None = None  # first N test images through the bench (None: all)
    seed: int = 0
    device: str = "cpu"  # torch device for training and the simulated bench's physics (a resolved --device)
    figure_inputs: int = 4  # test inputs drawn in the figure (demo.png); 0: no figure


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
    start, cpu_start = time.perf_counter(), time.process_time()
    timings: dict[str, float] = {}
    cpu: dict[str, float] = {}  # CPU seconds of this process (all its threads) per stage
    marks: dict[str, float] = {}

    def begin() -> float:
        marks["cpu"] = time.process_time()
        return time.perf_counter()

    def stage(name: str, t0: float) -> None:
        timings[name] = round(time.perf_counter() - t0, 1)
        cpu[name] = round(time.process_time() - marks["cpu"], 1)

    # each model's test metrics once, after its last epoch (TrainSettings.eval_every): the same models,
    # without the forward passes of a test after every epoch that the demo never shows
    base = TrainSettings(epochs=settings.teacher_epochs, seed=settings.seed, train_limit=settings.train_limit,
                         eval_every=settings.teacher_epochs)
    t0 = begin()
    log(f"data {data.describe()}")
    teacher = train_teacher(data, base, out / "teacher", processes=on_device, width=settings.teacher_width)
    stage("teacher", t0)
    log(f"teacher: {teacher.metrics} ({timings['teacher']} s)")
    students = {}
    for name, kd in (("student_nokd", False), ("student_kd", True)):
        t0 = begin()
        result = train_student(
            data, teacher.model if kd else None, TrainSettings(epochs=settings.student_epochs, seed=settings.seed,
                                                               train_limit=settings.train_limit, eval_every=settings.student_epochs),
            kind="sclc", out_dir=out / name, teacher_path=teacher.path if kd else None, processes=on_device,
            **settings.student_arch,
        )
        students[name] = result
        stage(name, t0)
        log(f"SCLC student {'with' if kd else 'without'} KD: {result.metrics} ({timings[name]} s)")
    # calibrated first: the optics-aware student trains through the panel the calibration measured
    # (its phase levels, fringing and fill factor), as an operator would train it for this bench
    t0 = begin()
    calibrate_all(spec, out / "calibration")
    calibrated = simulated_on(BenchSpec.from_file(out / "calibration" / "bench.toml"), device)
    stage("calibration", t0)
    log(f"bench calibrated: {out / 'calibration' / 'bench.toml'} ({timings['calibration']} s)")

    t0 = begin()
    sclc_kd = students["student_kd"]
    layout = layout_for_bench(calibrated, data.size, sclc_kd.model.front.out_channels)
    optics_limit = min((n for n in (settings.train_limit, settings.optics_train_limit) if n is not None), default=None)
    # distilled from the SCLC + KD student it starts from, not from the teacher: on fashion-mini (seed 0,
    # 2 epochs on 3000 images) its twin read 85.8 % against 84.3 from the teacher (the SCLC + KD student
    # 88.1): the digital student it shows is the function it is meant to match
    optical = train_student(
        data, sclc_kd.model, TrainSettings(epochs=settings.optics_epochs, seed=settings.seed, train_limit=optics_limit,
                                           eval_every=settings.optics_epochs),
        kind="optics_aware", out_dir=out / "optics_aware", teacher_path=sclc_kd.path, processes=on_device,
        start_from=(sclc_kd.model, sclc_kd.path), layout=layout,
    )
    stage("optics_aware", t0)
    log(f"optics-aware student (distilled from SCLC + KD, digital twin): {optical.metrics} ({timings['optics_aware']} s)")

    benches = {"uncalibrated": spec, "calibrated": calibrated}
    # each run's own (a run sets its event when it ends); both set when one fails or is interrupted,
    # so that the other stops at its next input
    stops = {name: threading.Event() for name in benches}

    def optical_run(name: str, bench_spec: BenchSpec) -> dict[str, Any]:
        t0 = time.perf_counter()
        masks = out / f"masks_{name}.h5"
        export_masks(optical.path, bench_spec, masks)
        summary, record = run_masks(bench_spec, masks, data, out / f"run_{name}.h5",
                                    options=RunOptions(limit=settings.test_limit), stop=stops[name])
        report = build_report(record)
        seconds = round(time.perf_counter() - t0, 1)
        log(f"optical, {name} bench: {report.metrics} at {summary.frames_per_s:.1f} frames/s ({seconds} s)")
        return {"metrics": report.metrics, "frames_per_s": summary.frames_per_s,
                "camera_frames_per_s": report.camera_frames_per_s, "seconds": seconds}

    t0 = begin()
    threads = torch.get_num_threads()
    if device.type == "cpu" and threads > 1:
        # side by side, a simulated bench each: their physics is many small steps that run best on one
        # core each (labctl.optics.cpu). The threads that do it (each run's capture thread, and the
        # pool's) start with the count set last, 1; this thread gets its own back after
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(max_workers=2, thread_name_prefix="demo-run") as pool:
                pending = {pool.submit(optical_run, name, bench): name for name, bench in benches.items()}
                try:
                    done, _ = wait(pending, return_when=FIRST_EXCEPTION)
                    if any(job.exception() for job in done):
                        for event in stops.values():
                            event.set()
                    runs = {pending[job]: job.result() for job in pending}
                except BaseException:
                    for event in stops.values():
                        event.set()
                    raise
        finally:
            torch.set_num_threads(threads)
    else:
        runs = {name: optical_run(name, bench) for name, bench in benches.items()}
    stage("runs", t0)

    figure = None
    if settings.figure_inputs > 0 and data.task == "classification":
        from labctl.demo_figure import save_demo_figure

        t0 = begin()
        figure = save_demo_figure(
            calibrated, out / "masks_calibrated.h5", data, out / FIGURE_NAME, settings.figure_inputs,
            title=f"labctl demo on {data.spec}: optics-aware student through the calibrated bench",
        )
        stage("figure", t0)
        log(f"figure: {figure['png']} ({timings['figure']} s)")

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
        "mflops": {
            "teacher": electronic_mflops(teacher.model),
            "student_nokd": electronic_mflops(students["student_nokd"].model),
            "student_kd": electronic_mflops(students["student_kd"].model),
            "optics_aware": electronic_mflops(optical.model),
        },
        "frames_per_input": layout.channel_groups,
        "seconds": round(time.perf_counter() - start, 1),
        "cpu_seconds": round(time.process_time() - cpu_start, 1),
        "timings_s": timings | {f"run_{name}": run["seconds"] for name, run in runs.items()},
        "cpu_s": cpu,
        "figure": figure["png"] if figure else None,
        "bench": str(spec.source),
        "settings": vars(settings),
    }
    (out / "summary.json").write_text(json.dumps(summary_doc, indent=2))
    return summary_doc
