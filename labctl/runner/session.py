"""One run of distilled masks on a bench: everything ``labctl run`` does, callable from Python.

Order of work, so that bad input is refused before any device is written to and before any record
is created: load masks, checkpoint and data (checked against each other) → open the bench and check
the masks against it → create (or reopen, for ``--resume``) the run record → set exposure and fit the
readout scale on training inputs → capture the drift monitor's baseline and dark level (or reuse the recorded ones)
→ show the mask and run every test input once, checking the response every few batches.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from calibration.acquisition import Acquirer, RetryPolicy
from calibration.exposure import auto_exposure
from calibration.session import open_session
from drivers.bench import Bench, BenchSpec
from labctl.data.fit import check_fits_model, check_test_split
from labctl.masks.mask_file import MaskFile, MaskFileError
from labctl.models.checkpoint import LoadedCheckpoint, load_checkpoint
from labctl.optics.layout import OpticalInputError, images_of, modulator_amplitudes
from labctl.optics.channel_scale import ChannelScale, fit_channel_scale
from labctl.optics.readout import DEFAULT_OVERSAMPLE
from labctl.records.provenance import sha256_file, software_provenance
from labctl.records.run_record import Column, RunRecord, RunRecordError
from labctl.runner.bench_calibration import BenchCalibration
from labctl.runner.drift import DriftMonitor, dark_frames, open_monitor
from labctl.runner.drift_settings import DriftSettings
from labctl.runner.loop import METADATA_COLUMNS, RunSummary, run_inputs
from labctl.runner.multiplex import capture_groups
from labctl.runner.optical_inference import OpticalInference


@dataclass
class RunOptions:
    batch_size: int = 32
    limit: int | None = None  # first N test inputs only
    save_frames: bool = False
    scale_inputs: int = 64  # training inputs used to fit the readout scale
    exposure_s: float | None = None  # None: automatic
    retry: RetryPolicy | None = None
    drift: DriftSettings = field(default_factory=DriftSettings)  # reference checks; every_batches=0: none


def student_for_masks(masks: MaskFile, checkpoint: str | Path | None = None) -> LoadedCheckpoint:
    """The checkpoint the masks were exported from (or ``checkpoint``), verified by its hash."""
    path = Path(checkpoint or masks.model["checkpoint"])
    loaded = load_checkpoint(path)
    if loaded.sha256 != masks.model["sha256"]:
        raise MaskFileError(
            f"checkpoint {loaded.path} (sha256 {loaded.sha256[:12]}) is not the model the masks were exported from "
            f"(sha256 {masks.model['sha256'][:12]}); pass the matching --student"
        )
    return loaded


def readout_oversample(student: LoadedCheckpoint) -> int:
    """Readout sub-samples per image pixel the student was trained with: an optics-aware student's own
    (its config says), the default for students whose readout is the digital detection."""
    return int(student.model.config.oversample) if student.kind == "optics_aware" else DEFAULT_OVERSAMPLE


def twin_detected(student: LoadedCheckpoint, images: np.ndarray) -> torch.Tensor:
    """What the back end was trained to read for ``images``: the student's own detection."""
    with torch.no_grad():
        return student.model.detected(torch.from_numpy(images))


def run_masks(
    spec: BenchSpec,
    masks_path: str | Path,
    data,
    out: str | Path,
    *,
    options: RunOptions | None = None,
    resume: bool = False,
    student_path: str | Path | None = None,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
    stop: threading.Event | None = None,
) -> tuple[RunSummary, Path]:
    """Run the test split of ``data`` through the bench with the masks; returns the summary and record."""
    options = options or RunOptions()
    masks = MaskFile.load(masks_path)
    student = student_for_masks(masks, student_path)
    layout = masks.layout
    check_test_split(data)
    test_images, test_targets = images_of(data.test, options.limit)
    train_images, _ = images_of(data.train, options.scale_inputs)
    modulator_amplitudes(test_images[:1], layout)  # size and range checked before any device I/O
    check_fits_model(data, student.config, f"student {student.path}")  # classes, channels, task
    out = Path(out)
    if not resume and out.exists():
        raise RunRecordError(f"{out} exists; use --resume to continue it or choose another --out")

    with open_session(spec) as session:
        bench = session.bench
        masks.check_bench(session.description, bench.fourier_slm.phase_table)
        calib = BenchCalibration.for_session(session, layout)
        identity = _identity(spec, bench, masks_path, student, calib, data.spec)
        processor = OpticalInference(
            student.model.back, layout, calib.affine, data.task, data.num_classes, correct=calib.correct_frames,
            oversample=readout_oversample(student), warp=calib.camera_warp,
        )
        drift_columns = [DriftMonitor.column] if options.drift.enabled else []
        record = _open_record(out, resume, identity, test_targets, data.task, masks, options, bench,
                              processor.columns + drift_columns)
        try:
            acquirer = Acquirer(bench, masks.group_gray()[0], options.retry or RetryPolicy(),
                                     on_fault=lambda kind, message, index: record.log_event(kind, message, index))
            processor.scale = _readout_scale(record, acquirer, processor, student, train_images, masks, options)
            monitor = open_monitor(record, options.drift, modulator_amplitudes(train_images, layout),
                                   lambda amplitudes: capture_groups(acquirer, masks.group_gray(), amplitudes), processor, resume,
                                   dark=lambda: dark_frames(acquirer, len(masks.group_gray())))
            total = record.n_inputs
            done0 = int(record.done.sum())
            counter = {"n": done0}

            def progressed(k: int) -> None:
                counter["n"] += k
                on_progress(counter["n"], total)

            on_progress(done0, total)
            summary = run_inputs(
                acquirer,
                lambda imgs: modulator_amplitudes(imgs, layout),
                test_images,
                test_targets,
                processor,
                record,
                options.batch_size,
                on_batch=progressed,
                stop=stop,
                group_gray=masks.group_gray(),
                monitor=monitor,
            )
            record.set_attr("last_summary", summary.__dict__ | {
                "frames_per_s": summary.frames_per_s, "frames_per_input": masks.frames_per_input,
                "camera_frames_per_s": summary.frames_per_s * masks.frames_per_input,
            })
        finally:
            record.close()
    return summary, out


def _identity(spec: BenchSpec, bench: Bench, masks_path, student: LoadedCheckpoint, calib, data_spec: str) -> dict[str, Any]:
    return {
        "bench_file": str(spec.source),
        "bench_toml": spec.raw,
        "devices": {name: dev.info.as_dict() for name, dev in bench.devices.items()},
        "calibration": calib.record_ids,
        "mask_file": str(masks_path),
        "mask_sha256": sha256_file(masks_path),
        "model_checkpoint": str(student.path),
        "model_sha256": student.sha256,
        "model_kind": student.kind,
        "data": data_spec,
        "software": software_provenance(),
    }


def _open_record(
    out: Path, resume: bool, identity, targets, task, masks: MaskFile, options: RunOptions, bench: Bench, columns: list[Column]
) -> RunRecord:
    n = int(targets.shape[0])
    if resume:
        record = RunRecord.open(out, "r+")
        for key in ("model_sha256", "mask_sha256", "data", "calibration", "bench_toml"):
            recorded = record.attr(key)
            if json.dumps(recorded, sort_keys=True, default=str) != json.dumps(identity[key], sort_keys=True, default=str):
                record.close()
                raise RunRecordError(
                    f"{out} was recorded with another {key.replace('_', ' ')} ({recorded!r}); "
                    f"this run has {identity[key]!r}; refusing to mix results"
                )
        if record.n_inputs != n:
            recorded = record.n_inputs
            record.close()
            raise RunRecordError(f"{out} holds {recorded} inputs; this run has {n} (same --limit as before?)")
        record.log_event("resumed", f"resumed with {int(record.done.sum())} of {n} inputs done")
        return record
    label_col = Column("label", (), "i8") if task == "classification" else Column("label", targets.shape[1:], "u1")
    groups = masks.frames_per_input
    frame_shape = ((groups, *bench.camera.grid.shape) if groups > 1 else bench.camera.grid.shape) if options.save_frames else None
    return RunRecord.create(
        out, n, [*columns, *METADATA_COLUMNS, label_col],
        identity | {"task": task, "method": masks.method, "frames_per_input": groups}, frame_shape,
    )


def _readout_scale(record: RunRecord, acquirer: Acquirer, processor: OpticalInference, student, train_images,
                   masks: MaskFile, options) -> ChannelScale:
    """Exposure and readout scale: recorded ones on resume (results stay comparable), else measured."""
    cam = acquirer.bench.camera
    saved = record.attr("readout")
    if saved is not None:
        exposure_s, scale = recorded_readout(record.path, saved, masks.layout.channels)
        cam.exposure_s = exposure_s
        return scale
    scale = calibrate_readout(acquirer, processor, student, train_images, masks.layout, options.exposure_s, masks.group_gray())
    record.set_attr("readout", {"exposure_s": cam.exposure_s, "inputs": len(train_images), **scale.to_dict()})
    return scale


def recorded_readout(path: Path, saved: Any, channels: int) -> tuple[float, ChannelScale]:
    """Exposure and readout scale a record holds, refused unless finite, positive where it must be and
    one gain and offset per channel: a NaN gain would silently turn every result into NaN."""
    try:
        exposure_s = float(saved["exposure_s"])
        gain = np.asarray(saved["gain"], dtype=np.float64)
        offset = np.asarray(saved["offset"], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise RunRecordError(f"{path}: the recorded readout ({saved!r:.200}) is malformed: {exc}") from None
    if not (np.isfinite(exposure_s) and exposure_s > 0):
        raise RunRecordError(f"{path}: recorded readout exposure_s = {exposure_s!r}; expected a finite time > 0")
    for name, values in (("gain", gain), ("offset", offset)):
        if values.shape != (channels,) or not np.all(np.isfinite(values)):
            raise RunRecordError(
                f"{path}: recorded readout {name} {values.tolist()!r:.200} is not {channels} finite number(s), one per channel"
            )
    return exposure_s, ChannelScale(gain, offset)


def calibrate_readout(
    acquirer: Acquirer, processor: OpticalInference, student: LoadedCheckpoint, images: np.ndarray, layout,
    exposure_s: float | None, group_gray: Sequence[np.ndarray],
) -> ChannelScale:
    """Set the exposure (automatic unless given) and fit the per-channel readout scale on ``images``
    (training inputs): bench readouts → what the student's own detection gives for them.

    The automatic exposure is set under the first channel group's mask, on the pixels the tiles are
    read from (a mask's zero order and the light an encoding sends past the tiles may clip: neither
    is read); a multiplexed layout's groups share it (their masks spread the same light over the
    same tiles)."""
    amplitudes = modulator_amplitudes(images, layout)
    if exposure_s is not None:
        acquirer.bench.camera.exposure_s = exposure_s
    else:
        acquirer.set_mask(group_gray[0])
        auto_exposure(acquirer, amplitudes[: min(16, len(amplitudes))], region=processor.pixels_read)
    frames = capture_groups(acquirer, group_gray, amplitudes)
    return fit_channel_scale(processor.readout(frames.data), twin_detected(student, images))


__all__ = ["OpticalInputError", "RunOptions", "run_masks", "images_of", "student_for_masks"]
