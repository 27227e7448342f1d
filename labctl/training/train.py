"""Training entry points, for the CLI and for Python callers (``labctl demo``, benchmarks):
:func:`train_teacher` and :func:`train_student` build the model for a data set, train it, and (with
``out_dir``) save the checkpoint, its JSON description and a training-curve PNG beside it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from labctl.data.dataset import Dataset
from labctl.models.checkpoint import save_checkpoint
from labctl.optics.layout import OpticalLayout
from labctl.models.optics_aware import OpticsAwareConfig, OpticsAwareStudent
from labctl.models.student import SCLCStudent, StudentConfig, all_linear_config
from labctl.models.teacher import TeacherCNN, TeacherConfig, UNetConfig, UNetTeacher
from labctl.training.curves import save_curves
from labctl.training.errors import TrainingSettingsError
from labctl.training.distributed import Processes
from labctl.training.loop import ProgressHook, TrainSettings, fit
from labctl.training.resume import ResumeError, TrainStateFile
from labctl.training.warm_start import optics_aware_from_sclc

StudentKind = Literal["sclc", "linear", "optics_aware"]
CURVES_NAME = "curves.png"


@dataclass
class TrainResult:
    model: nn.Module
    metrics: dict[str, float]
    history: list[dict]
    path: Path | None  # weights file, when saved


def teacher_for(data: Dataset, depth: int = 3, width: int = 16, hidden: int = 128, convs: int = 1, seed: int = 0) -> nn.Module:
    """A nonlinear CNN (classification) or small U-Net (segmentation) sized for ``data``."""
    torch.manual_seed(seed)
    if data.task == "segmentation":
        return UNetTeacher(UNetConfig("segmentation", data.channels, data.size, data.num_classes, levels=2, width=width))
    return TeacherCNN(TeacherConfig("classification", data.channels, data.size, data.num_classes, depth, width, hidden, convs))


def student_for(
    data: Dataset,
    kind: StudentKind = "sclc",
    channels: tuple[int, ...] = (16, 16),
    pool: tuple[int, ...] | None = None,
    detection: str = "intensity",
    hidden: int = 128,
    backend_pool: int = 7,
    layout: OpticalLayout | None = None,
    backend_conv: int = 0,
    backend_conv_layers: int = 1,
    seed: int = 0,
    kernel_support: int = 0,
) -> nn.Module:
    """An SCLC student, the all-linear baseline, or an optics-aware student (``layout`` required:
    :func:`labctl.models.bench_layout.layout_for_bench`) for ``data``. ``kernel_support``: an SCLC
    student's spatial kernel limit (:class:`labctl.models.student.StudentConfig`; 0: free filters)."""
    torch.manual_seed(seed)
    if kernel_support and kind != "sclc":
        raise TrainingSettingsError(f"a kernel support limit is a setting of the SCLC student; a {kind} student has none")
    if kind == "linear":
        if backend_conv or backend_conv_layers != 1:
            raise TrainingSettingsError("the all-linear baseline has no back-end convolution (its ReLU would make it nonlinear)")
        return SCLCStudent(all_linear_config(data.task, data.channels, data.size, data.num_classes))
    if kind == "optics_aware":
        if layout is None:
            raise TrainingSettingsError("an optics-aware student needs an OpticalLayout (layout_for_bench(spec, size, channels))")
        config = OpticsAwareConfig(
            data.task, data.channels, data.size, data.num_classes, layout=layout.to_dict(), hidden=hidden, backend_pool=backend_pool,
            backend_conv=backend_conv, backend_conv_layers=backend_conv_layers,
        )
        return OpticsAwareStudent(config, seed=seed)
    if kind != "sclc":
        raise TrainingSettingsError(f"unknown student kind {kind!r}; expected sclc, linear or optics_aware")
    pool = tuple(pool) if pool is not None else (1,) * len(channels)
    config = StudentConfig(
        data.task, data.channels, data.size, data.num_classes, channels=list(channels), pool=list(pool),
        detection=detection, backend_pool=backend_pool, hidden=hidden, backend_conv=backend_conv,  # type: ignore[arg-type]
        backend_conv_layers=backend_conv_layers, kernel_support=kernel_support,
    )
    return SCLCStudent(config)


def _identity(
    model: nn.Module, data: Dataset, settings: TrainSettings, teacher: nn.Module | None, meta: dict | None, processes: Processes,
) -> dict:
    """What a resumed run must share with the one that saved the state (how often it tests does not
    change the training: ``TrainSettings.eval_every``)."""
    return {
        "model": type(model).__name__, "config": asdict(model.config), "data": data.spec, "image_size": data.size,
        "settings": {k: v for k, v in asdict(settings).items() if k != "eval_every"}, "kd": teacher is not None, "meta": dict(meta or {}), "processes": processes.world_size,
    }


def run_training(
    model: nn.Module,
    data: Dataset,
    settings: TrainSettings,
    teacher: nn.Module | None = None,
    out_dir: str | Path | None = None,
    meta: dict | None = None,
    progress: ProgressHook | None = None,
    processes: Processes = Processes(),
    resume: bool = False,
) -> TrainResult:
    """Train ``model`` (by KD when ``teacher`` is given) on ``processes.device`` and save it to
    ``out_dir`` if given (rank 0 alone, when several processes train). With ``out_dir`` the training
    state is saved after every epoch, and ``resume`` continues from the last saved epoch."""
    if resume and out_dir is None:
        raise ResumeError("resuming needs the run folder the training state was saved in (out_dir)")
    state_file = None
    if out_dir is not None:
        state_file = TrainStateFile.in_folder(out_dir, _identity(model, data, settings, teacher, meta, processes), resume)
    history = fit(model, data, settings, teacher, progress, processes, state_file)
    metrics = {k: v for k, v in history[-1].items() if k not in ("epoch", "loss", "seconds")}
    path = None
    if out_dir is not None and processes.is_main:
        doc = {
            "data": data.spec, "task": data.task, "image_size": data.size, "num_classes": data.num_classes,
            "metrics": metrics, "training": asdict(settings), "kd": teacher is not None, "history": history, **(meta or {}),
        }
        if teacher is None:
            doc["training"] = {k: v for k, v in doc["training"].items() if not k.startswith("kd_")}
        path = save_checkpoint(out_dir, model, doc)
        title = f"{type(model).__name__} on {data.spec}" + (" (KD)" if teacher is not None else "")
        save_curves(history, path.parent / CURVES_NAME, title)
        assert state_file is not None
        state_file.remove()
    return TrainResult(model, metrics, history, path)


def train_teacher(
    data: Dataset, settings: TrainSettings = TrainSettings(), out_dir: str | Path | None = None,
    progress: ProgressHook | None = None, processes: Processes = Processes(), resume: bool = False, **arch: int,
) -> TrainResult:
    """Train a nonlinear teacher on ``data``; ``arch``: depth, width, hidden, convs (see :func:`teacher_for`)."""
    model = teacher_for(data, seed=settings.seed, **arch)
    return run_training(model, data, settings, None, out_dir, progress=progress, processes=processes, resume=resume)


def train_student(
    data: Dataset,
    teacher: nn.Module | None = None,
    settings: TrainSettings = TrainSettings(),
    kind: StudentKind = "sclc",
    out_dir: str | Path | None = None,
    progress: ProgressHook | None = None,
    teacher_path: str | Path | None = None,
    processes: Processes = Processes(),
    resume: bool = False,
    start_from: tuple[SCLCStudent, str | Path | None] | None = None,
    **arch,
) -> TrainResult:
    """Train a student; by KD from ``teacher`` when one is given, else on the labels alone (the
    no-KD and all-linear baselines). ``arch``: see :func:`student_for`.

    ``start_from`` = (SCLC student, its checkpoint path): an optics-aware student starts from that
    student's filters and back end (:func:`labctl.training.warm_start.optics_aware_from_sclc`);
    ``arch`` then holds only the ``layout``, the rest is the SCLC student's."""
    meta = {"teacher": str(teacher_path) if teacher_path else None}
    if start_from is not None:
        if kind != "optics_aware" or set(arch) != {"layout"}:
            raise TrainingSettingsError(
                "only an optics-aware student starts from an SCLC student, and its back end is the SCLC student's: "
                f"pass the layout alone (got kind {kind!r}, {sorted(arch)})"
            )
        model = optics_aware_from_sclc(start_from[0], arch["layout"], settings.seed)
        meta["started_from"] = str(start_from[1]) if start_from[1] else None
    else:
        model = student_for(data, kind, seed=settings.seed, **arch)
    return run_training(model, data, settings, teacher, out_dir, meta, progress, processes, resume)
