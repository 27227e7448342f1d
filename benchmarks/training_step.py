"""Milliseconds per training step of the default classification models (teacher, SCLC student
without and with KD), and the seconds they project for a Fashion-MNIST-sized run: the 15 CPU
minutes per model that benchmarks/distillation.py must fit in, estimated in about 25 s.

    python benchmarks/training_step.py --threads 2
    python benchmarks/training_step.py --size 64 --train-images 50000   # another data shape
    python benchmarks/training_step.py --device cuda                    # on a GPU (default auto: one where there is one)

Steps are timed inside labctl's own training loop (``fit``, through its progress hook), so they
include the random shifts, the teacher's forward pass under KD and the optimiser; the first
``--warmup`` steps (at least the first, which also holds ``fit``'s set-up) are left out and the
median is reported. Images are random: these models do the same arithmetic whatever the pixel
values. A projected run is ``--epochs`` × (steps per epoch × median step + (test images +
BatchNorm recalibration images) × evaluation time per image): an estimate, 7-16 % under full
Fashion-MNIST student runs timed the same day. Page faults per step say whether freed tensor
memory is being reused (``labctl.training.allocator``). Last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from labctl.cli.train import CLASSIFIER_SCLC_SIZE, DEFAULT_TEACHER_CONVS  # noqa: E402
from labctl.data.dataset import Dataset, Split  # noqa: E402
from labctl.device import DEVICE_CHOICES, DeviceUnavailable, resolve_device  # noqa: E402
from labctl.training.distributed import Processes  # noqa: E402
from labctl.training.loop import TrainSettings, fit  # noqa: E402
from labctl.training.metrics import evaluate  # noqa: E402
from labctl.training.train import student_for, teacher_for  # noqa: E402

RECALIBRATION_IMAGES = 2048  # labctl.training.loop.recalibrate_batchnorm's default


def random_dataset(images: int, test_images: int, size: int, classes: int) -> Dataset:
    generator = torch.Generator().manual_seed(0)

    def split(n: int) -> Split:
        pixels = torch.randint(0, 256, (n, 1, size, size), dtype=torch.uint8, generator=generator)
        return Split(pixels, torch.randint(0, classes, (n,), generator=generator))

    return Dataset(f"random {size} px", "classification", classes, split(images), split(test_images))


def time_steps(
    model: torch.nn.Module, data: Dataset, batch_size: int, warmup: int, teacher: torch.nn.Module | None = None,
    device: torch.device = torch.device("cpu"),
) -> tuple[list[float], float]:
    """Seconds of each training step after ``warmup`` on ``device`` (each step ends reading its loss
    back, so a GPU's queue is included), and page faults per step over them."""
    stamps = [time.perf_counter()]
    faults = [resource.getrusage(resource.RUSAGE_SELF).ru_minflt]

    def hook(epoch: int, step: int, steps: int, loss: float) -> None:
        stamps.append(time.perf_counter())
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)

    fit(model, data, TrainSettings(epochs=1, batch_size=batch_size, seed=0), teacher, hook, Processes(device=device))
    steps = [b - a for a, b in zip(stamps[warmup:], stamps[warmup + 1 :])]
    return steps, (faults[-1] - faults[warmup]) / max(len(steps), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--size", type=int, default=28, help="image side, px")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--steps", type=int, default=40, help="timed steps per model")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=TrainSettings.batch_size)
    parser.add_argument("--train-images", type=int, default=60_000, help="training images of the projected run")
    parser.add_argument("--test-images", type=int, default=10_000, help="test images of the projected run (scored every epoch)")
    parser.add_argument("--epochs", type=int, default=12, help="epochs of the projected run (benchmarks/distillation.py's default)")
    parser.add_argument("--device", default="auto", help=f"torch device, {DEVICE_CHOICES} (auto: a GPU where there is one)")
    args = parser.parse_args()
    if args.steps < 2 or args.warmup < 1:
        parser.error(f"--steps must be >= 2 and --warmup >= 1; got {args.steps}, {args.warmup}")
    try:
        device = resolve_device(args.device)
    except DeviceUnavailable as exc:
        parser.error(str(exc))
    if args.threads:
        torch.set_num_threads(args.threads)
    data = random_dataset((args.steps + args.warmup) * args.batch_size, 1024, args.size, args.classes)
    teacher = teacher_for(data, width=32, convs=DEFAULT_TEACHER_CONVS)  # benchmarks/distillation.py's teacher
    arch = {k: v for k, v in CLASSIFIER_SCLC_SIZE.items() if k != "channels"}
    students = {name: student_for(data, channels=(int(CLASSIFIER_SCLC_SIZE["channels"]),), **arch) for name in ("student_nokd", "student_kd")}
    print(f"{device}, {torch.get_num_threads()} threads, {args.size} px, batch {args.batch_size}; {args.steps} steps timed per model", flush=True)
    summary: dict[str, float | int | str] = {"device": str(device), "threads": torch.get_num_threads(), "size": args.size, "batch_size": args.batch_size}
    steps_per_epoch = math.ceil(args.train_images / args.batch_size)
    runs = (("teacher", teacher, None), ("student_nokd", students["student_nokd"], None), ("student_kd", students["student_kd"], teacher))
    for name, model, kd_teacher in runs:
        steps, faults = time_steps(model, data, args.batch_size, args.warmup, kd_teacher, device)
        start = time.perf_counter()
        evaluate(model, data.test, data.task)
        eval_per_image = (time.perf_counter() - start) / len(data.test)
        step = statistics.median(steps)
        projected = args.epochs * (steps_per_epoch * step + (args.test_images + RECALIBRATION_IMAGES) * eval_per_image)
        print(
            f"{name:13s} step {1000 * step:6.1f} ms (fastest {1000 * min(steps):.1f}), {faults:7.0f} page faults/step, "
            f"evaluation {1e6 * eval_per_image:5.0f} us/image -> {projected:5.0f} s for {args.epochs} epochs of {args.train_images} images",
            flush=True,
        )
        summary |= {
            f"step_ms_{name}": round(1000 * step, 2), f"eval_us_per_image_{name}": round(1e6 * eval_per_image, 1),
            f"page_faults_per_step_{name}": round(faults), f"projected_seconds_{name}": round(projected),
        }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
