"""``labctl train teacher|student``: train a nonlinear teacher, or a student (SCLC, optics-aware or
all-linear) by knowledge distillation or on labels alone, and save checkpoint + curves to --out."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from labctl.cli.common import bench_option, clean_errors, load_bench_spec
from labctl.cli.device_option import device_option
from labctl.data.spec import SPEC_HELP

if TYPE_CHECKING:  # torch is imported when a command runs, not for --help
    import torch

    from labctl.training.distributed import Processes

DEFAULT_EPOCHS = 15
#: the KD and spectral-filter defaults of labctl.training.loop.TrainSettings (repeated so that
#: `labctl --help` needs no torch)
DEFAULT_T, DEFAULT_ALPHA, DEFAULT_SPECTRAL_LR_SCALE, DEFAULT_PHASE_LR_SCALE = 2.0, 0.5, 16.0, 30.0
#: 3x3 convolutions per block of the classification teacher. Two made a better teacher on
#: Fashion-MNIST (94.5 % against 93.0 %) and doubled what KD gains, but its training then exceeds 15
#: CPU minutes on 2 cores, as did its KD student's before KD ran a folded teacher copy; with the
#: default student's back-end convolution it gave KD no more (benchmarks/distillation.md)
DEFAULT_TEACHER_CONVS = 1
#: student size when --channels / --hidden / --backend-pool / --backend-conv(-layers) are not given.
#: A classification SCLC student gets 32 channels and a back end that pools to 14 x 14, then two 3 x 3
#: convolutions to 64 channels (each max-pooled 2 x 2) and 256 hidden units: on Fashion-MNIST the
#: pooling and width beat 16 channels with 7 x 7 / 128 by 0.5-0.7 points; KD recovers 55-56 % of the
#: teacher's lead with the two convolutions, 31.9 % with one and 12.7 % with none, and the distilled
#: student is best with two (benchmarks/distillation.md). Optics-aware students keep 16 channels (each
#: one a camera tile) and no convolution, segmentation back ends 128 units (at full resolution).
CLASSIFIER_SCLC_SIZE = {"channels": "32", "hidden": 256, "backend_pool": 14, "backend_conv": 64, "backend_conv_layers": 2}
OTHER_STUDENT_SIZE = {"channels": "16", "hidden": 128, "backend_pool": 7, "backend_conv": 0, "backend_conv_layers": 1}


def backend_conv_arch(task: str, data_spec: str, backend_conv: int | None, backend_conv_layers: int | None, defaults: dict) -> dict:
    """The back-end convolution part of a student's architecture from ``--backend-conv`` and
    ``--backend-conv-layers`` (None: the value in ``defaults``); a combination that would be ignored
    is refused."""
    if task != "classification":
        if backend_conv or backend_conv_layers is not None:
            raise click.UsageError(f"--backend-conv and --backend-conv-layers are for classification back ends; {data_spec} is a {task} set")
        return {"backend_conv": 0}
    channels = defaults["backend_conv"] if backend_conv is None else backend_conv
    if not channels:
        if backend_conv_layers is not None:
            raise click.UsageError("--backend-conv-layers needs a back-end convolution (--backend-conv N > 0)")
        return {"backend_conv": 0}
    return {"backend_conv": channels, "backend_conv_layers": defaults["backend_conv_layers"] if backend_conv_layers is None else backend_conv_layers}


def _common(fn: Callable) -> Callable:
    options = [
        click.option("--data", "data_spec", default="digits", show_default=True, help=f"Data set: {SPEC_HELP}."),
        click.option("--size", type=click.IntRange(8, 1024), default=None, help="Resize images to SIZE x SIZE px."),
        click.option("--epochs", type=click.IntRange(1), default=DEFAULT_EPOCHS, show_default=True),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--batch-size", type=click.IntRange(1), default=128, show_default=True),
        click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=3e-3, show_default=True, help="Peak learning rate (one-cycle)."),
        click.option("--train-limit", type=click.IntRange(1), default=None, help="Train on the first N training images only."),
        click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Run folder for model.pt, model.json, curves.png."),
        click.option("--resume", is_flag=True, help="Continue an interrupted run in --out from its last finished epoch."),
        device_option("training (under torchrun, cuda means each process's own GPU)"),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@contextmanager
def _progress_bar(label: str, epochs: int, shown: bool = True) -> Iterator[Callable[[int, int, int, float], None] | None]:
    """A progress bar's hook; none (and no bar) where ``shown`` is false: the ranks other than 0."""
    if not shown:
        yield None
        return
    console = Console(stderr=True)
    with Progress(
        TextColumn(f"[bold]{label}"), TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"), BarColumn(),
        MofNCompleteColumn(), TextColumn("loss {task.fields[loss]:.4f}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(label, total=None, epoch=1, epochs=epochs, loss=float("nan"))

        def hook(epoch: int, step: int, steps: int, loss: float) -> None:
            progress.update(task, total=steps * epochs, completed=(epoch - 1) * steps + step, epoch=epoch, loss=loss)

        yield hook


def _processes(device: torch.device) -> Processes:
    """This process's place in the training (a world of one unless started by torchrun); the process
    group lives as long as the command."""
    from labctl.training.distributed import training_processes

    return click.get_current_context().with_resource(training_processes(device))


def _report(result, out: Path) -> None:
    console = Console()
    for h in result.history:
        metrics = "  ".join(f"{k} {v:.4f}" for k, v in h.items() if k not in ("epoch", "loss", "seconds"))
        console.print(f"epoch {h['epoch']:3d}  loss {h['loss']:.4f}  {metrics}  ({h['seconds']:.1f} s)")
    console.print(f"saved {result.path} and {out / 'curves.png'}")
    click.echo(json.dumps({"checkpoint": str(result.path), **result.metrics}))


@click.group("train")
def train_group() -> None:
    """Train teachers and distilled students."""


@train_group.command("teacher")
@_common
@click.option("--width", type=click.IntRange(1), default=32, show_default=True, help="Channels of the first conv block.")
@click.option("--depth", type=click.IntRange(1), default=3, show_default=True, help="Conv blocks (CNN) / 2 levels (U-Net).")
@click.option("--convs", type=click.IntRange(1), default=DEFAULT_TEACHER_CONVS, show_default=True, help="3x3 convolutions per block (CNN).")
@clean_errors
def train_teacher_command(
    data_spec: str, size: int | None, epochs: int, seed: int, batch_size: int, lr: float, train_limit: int | None,
    out: Path, resume: bool, device: torch.device, width: int, depth: int, convs: int,
) -> None:
    """Train the nonlinear teacher: a CNN (classification) or a small U-Net (segmentation)."""
    from labctl.data import load_dataset
    from labctl.training.loop import TrainSettings
    from labctl.training.train import train_teacher

    processes = _processes(device)
    data = load_dataset(data_spec, size)
    if processes.is_main:
        Console(stderr=True).print(data.describe())
    settings = TrainSettings(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, train_limit=train_limit)
    arch = {"width": width} if data.task == "segmentation" else {"width": width, "depth": depth, "convs": convs}
    with _progress_bar("teacher", epochs, processes.is_main) as hook:
        result = train_teacher(data, settings, out, hook, processes, resume, **arch)
    if processes.is_main:
        _report(result, out)


def _parse_ints(text: str, what: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise click.BadParameter(f"{what} must be comma-separated integers, e.g. 16 or 16,16; got {text!r}") from None
    if not values or min(values) < 1:
        raise click.BadParameter(f"{what} must be positive integers; got {text!r}")
    return values


def _sclc_start(
    path: Path | None, kind: str, data, channels: str | None, hidden: int | None, backend_pool: int | None,
    backend_conv: int | None, backend_conv_layers: int | None,
):
    """The SCLC student ``--start-from`` names (None without it), refused unless it fits the data and
    no option asks for another size (its channels and back end are what the new student gets)."""
    from labctl.models.checkpoint import CheckpointError, load_checkpoint

    if path is None:
        return None
    if kind != "optics_aware":
        raise click.UsageError("--start-from starts an optics-aware student; add --optics-aware")
    given = [name for name, value in (("--channels", channels), ("--hidden", hidden), ("--backend-pool", backend_pool),
                                      ("--backend-conv", backend_conv), ("--backend-conv-layers", backend_conv_layers)) if value is not None]
    if given:
        raise click.UsageError(f"with --start-from the channels and back end are the SCLC student's; drop {', '.join(given)}")
    loaded = load_checkpoint(path)
    if loaded.kind != "sclc":
        raise CheckpointError(loaded.path, f"is a {loaded.kind!r} checkpoint; --start-from needs an SCLC student")
    c = loaded.model.config
    if (c.task, c.in_channels, c.size, c.num_classes) != (data.task, data.channels, data.size, data.num_classes):
        raise CheckpointError(
            loaded.path, f"was trained for {c.task}, {c.in_channels}x{c.size}px, {c.num_classes} classes; "
            f"the data is {data.task}, {data.channels}x{data.size}px, {data.num_classes} classes",
        )
    return loaded.model


@train_group.command("student")
@_common
@click.option("--teacher", "teacher_path", type=click.Path(exists=True, path_type=Path), default=None, help="Teacher checkpoint (file or run folder) for KD.")
@click.option("--kd-temperature", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_T, show_default=True)
@click.option("--kd-alpha", type=click.FloatRange(0, 1), default=DEFAULT_ALPHA, show_default=True, help="Weight of the soft (teacher) targets.")
@click.option("--no-kd", is_flag=True, help="Baseline: train on the labels alone.")
@click.option("--optics-aware", is_flag=True, help="Front end = the bench's 4f model (phase-only, quantised mask, camera tiles).")
@click.option(
    "--start-from", "start_from", type=click.Path(exists=True, path_type=Path), default=None,
    help="With --optics-aware: start from this SCLC student (its filters, made phase only by the iterative encoding, and its back end) instead of random ramps.",
)
@click.option(
    "--distil-from-start", is_flag=True,
    help="With --start-from: distil from that SCLC student instead of a teacher, so that the optics-aware student "
    "learns to read as the digital student it shows (what `labctl demo` does).",
)
@click.option(
    "--phase-lr-scale", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_PHASE_LR_SCALE, show_default=True,
    help="Learning-rate multiplier for an optics-aware student's SLM phase.",
)
@click.option("--all-linear", is_flag=True, help="Baseline: field detection and a linear back end, no nonlinearity at all.")
@click.option(
    "--channels", default=None,
    help="Output channels per spectral layer, e.g. 16 or 16,16 (optics-aware: camera tiles). Default: 32 for a "
    "classification SCLC student, else 16.",
)
@click.option("--pool", default=None, help="Spectral pooling factor per layer (default 1 each).")
@click.option(
    "--kernel-support", type=click.IntRange(0), default=None,
    help="SCLC student: limit each spectral layer's spatial kernel to K x K px (K odd) and convolve linearly, as the 4f "
    "system does (no wrap at the image border, no spill into neighbouring camera tiles); 0: free filters as wide as the image. "
    "Default: about a third of the image side (9 px at 28 px) for a classification student with one spectral layer "
    "and no pooling, else 0.",
)
@click.option("--detection", type=click.Choice(["intensity", "field"]), default="intensity", show_default=True)
@click.option("--hidden", type=click.IntRange(1), default=None, help="Back-end width. Default: 256 for a classification SCLC student, else 128.")
@click.option(
    "--backend-pool", type=click.IntRange(1), default=None,
    help="Side of the pooled intensity map the back-end MLP reads (classification). Default: 14 for an SCLC student, 7 for an optics-aware one.",
)
@click.option(
    "--spectral-lr-scale", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_SPECTRAL_LR_SCALE, show_default=True,
    help="Learning-rate multiplier for the spectral filters (SCLC and all-linear students).",
)
@click.option(
    "--backend-conv", type=click.IntRange(0), default=None,
    help="Channels of the electronic 3x3 convolutions in the classifier back end (SCLC or optics-aware student); 0: none. "
    "Default: 64 for a classification SCLC student, else 0.",
)
@click.option(
    "--backend-conv-layers", type=click.IntRange(1), default=None,
    help="How many such convolutions, each followed by 2x2 max pooling. Default: 2 for a classification SCLC student, else 1.",
)
@bench_option
@clean_errors
def train_student_command(
    data_spec: str, size: int | None, epochs: int, seed: int, batch_size: int, lr: float, train_limit: int | None, out: Path,
    resume: bool, device: torch.device, teacher_path: Path | None, kd_temperature: float, kd_alpha: float, no_kd: bool, optics_aware: bool,
    start_from: Path | None, distil_from_start: bool, phase_lr_scale: float, all_linear: bool,
    channels: str | None, pool: str | None, kernel_support: int | None, detection: str, hidden: int | None, backend_pool: int | None, spectral_lr_scale: float,
    backend_conv: int | None, backend_conv_layers: int | None, bench_file: Path | None,
) -> None:
    """Train a student: by KD from --teacher (or, with --distil-from-start, from the --start-from
    student), or with --no-kd on labels alone."""
    from labctl.data import load_dataset
    from labctl.models.checkpoint import CheckpointError, load_checkpoint
    from labctl.models.bench_layout import layout_for_bench
    from labctl.models.student import default_kernel_support
    from labctl.optics.layout import OpticalLayout
    from labctl.training.loop import TrainSettings
    from labctl.training.train import train_student

    if optics_aware and all_linear:
        raise click.UsageError("--optics-aware and --all-linear are different students; choose one")
    if backend_conv and all_linear:
        raise click.UsageError("--backend-conv adds a ReLU; the --all-linear baseline has none")
    if distil_from_start and (start_from is None or teacher_path is not None or no_kd):
        raise click.UsageError("--distil-from-start distils from the --start-from student: give --start-from, and neither --teacher nor --no-kd")
    if teacher_path is None and not no_kd and not distil_from_start:
        raise click.UsageError("KD needs a teacher: pass --teacher CKPT (from `labctl train teacher`), --start-from with "
                               "--distil-from-start, or --no-kd for the baseline")
    teacher = None
    if teacher_path is not None and not no_kd:
        loaded = load_checkpoint(teacher_path)
        if loaded.kind != "teacher":
            raise CheckpointError(loaded.path, f"is a {loaded.kind!r} checkpoint; --teacher needs one from `labctl train teacher`")
        teacher = loaded.model
        size = size or loaded.config.size
    if distil_from_start:
        size = size or load_checkpoint(start_from).config.size
    processes = _processes(device)
    data = load_dataset(data_spec, size)
    if processes.is_main:
        Console(stderr=True).print(data.describe())
    if teacher is not None:
        tc = teacher.config
        if (tc.task, tc.in_channels, tc.size, tc.num_classes) != (data.task, data.channels, data.size, data.num_classes):
            raise CheckpointError(
                teacher_path, f"teacher was trained for {tc.task}, {tc.in_channels}x{tc.size}px, {tc.num_classes} classes; "
                f"the data is {data.task}, {data.channels}x{data.size}px, {data.num_classes} classes",
            )
    kind = "optics_aware" if optics_aware else "linear" if all_linear else "sclc"
    sclc_start = _sclc_start(start_from, kind, data, channels, hidden, backend_pool, backend_conv, backend_conv_layers)
    if distil_from_start:
        teacher, teacher_path = sclc_start, start_from
    size_defaults = CLASSIFIER_SCLC_SIZE if (kind, data.task) == ("sclc", "classification") else OTHER_STUDENT_SIZE
    channels = channels or size_defaults["channels"]
    arch: dict = {"hidden": hidden or size_defaults["hidden"], "backend_pool": backend_pool or size_defaults["backend_pool"]}
    if kind != "linear":
        arch |= backend_conv_arch(data.task, data_spec, backend_conv, backend_conv_layers, size_defaults)
    elif backend_conv_layers is not None:
        raise click.UsageError("--backend-conv-layers adds ReLUs; the --all-linear baseline has none")
    if kernel_support and kind != "sclc":
        raise click.UsageError("--kernel-support limits an SCLC student's spectral filters; an optics-aware or all-linear student has none")
    if kind == "sclc":
        arch |= {"channels": _parse_ints(channels, "--channels"), "detection": detection}
        if pool is not None:
            arch["pool"] = _parse_ints(pool, "--pool")
        if kernel_support is None:
            kernel_support = default_kernel_support(
                data.task, data.size, len(arch["channels"]), any(p != 1 for p in arch.get("pool", [])))
        if kernel_support:
            arch["kernel_support"] = kernel_support
    elif kind == "optics_aware":
        n_channels = sclc_start.front.out_channels if sclc_start is not None else _parse_ints(channels, "--channels")[-1]
        arch["layout"] = layout_for_bench(load_bench_spec(bench_file), data.size, n_channels)
        if sclc_start is not None:
            arch = {"layout": arch["layout"]}
    settings = TrainSettings(
        epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, train_limit=train_limit,
        kd_temperature=kd_temperature, kd_alpha=kd_alpha, spectral_lr_scale=spectral_lr_scale, phase_lr_scale=phase_lr_scale,
    )
    label = f"{kind} student" + (" (KD)" if teacher is not None else "")
    with _progress_bar(label, epochs, processes.is_main) as hook:
        result = train_student(
            data, teacher, settings, kind, out, hook, teacher_path if teacher is not None else None, processes, resume,
            start_from=None if sclc_start is None else (sclc_start, start_from), **arch,
        )
    if processes.is_main:
        _report(result, out)
