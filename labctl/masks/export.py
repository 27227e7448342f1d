"""``labctl export-masks``: a trained student → the mask file for one bench.

Two paths (compared by ``benchmarks/mask_export.py``):

(a) an SCLC student: collapse its stack into one complex filter per channel, lay the channels out as
    camera tiles with linear phase ramps, sample at the SLM's pitch for the bench's wavelength and
    focal length (:mod:`labctl.masks.filter_bank`), and make it phase only, by one of ``ENCODINGS``:

    - ``auto`` (the default): ``iterative`` where the calibrated panel adds at most
      ``PANEL_ADDED_ERROR_WARNING`` to its field's error and the back end, reading it through the
      calibrated twin on training images (:mod:`labctl.masks.twin_check`), loses at most
      ``AUTO_TWIN_CHECK_LOSS`` of the digital model's accuracy there; else ``optimised``, unless the
      twin check reads that worse; where the panel adds more, ``optimised`` directly (the panel's
      fringing smooths away the fine phase structure the iterative encoding shapes the field with:
      at 0.42 px the iterative export read 5.1 below digital, the optimised one 0.0-0.9 below; with
      the full Fashion-MNIST training set the student's iterative export read 3.6 below through the
      embedded bench, its optimised one 0.75);
    - ``iterative`` (data-free): Gerchberg–Saxton with a free region
      (:mod:`labctl.masks.iterative`), which sends the light the phase cannot shape to where no tile
      reads;
    - ``optimised``: the iterative encoding refined by optimisation on training images through the
      twin, which shows it through the panel's calibrated fringing and fill factor
      (:mod:`labctl.masks.optimise`); on the embedded simulated bench 0.3 points below the iterative
      export on the mean of three seeds (60 steps), on a panel of 0.7-px fringing 81 % where the
      iterative encoding reads chance (benchmarks/optical_parity.md);
    - ``double-phase`` (closed form, kept as the reference): :mod:`labctl.masks.encoding`, amplitudes
      scaled to their ``DOUBLE_PHASE_CLIP_PERCENTILE`` percentile.

    A student trained with a kernel support (``labctl train student --kernel-support K``) is laid
    out with a guard band between its tiles sized from its kernel
    (:func:`labctl.optics.layout.guard_for_kernel`), so no channel's light reaches another's tile,
    and the tiles packed in the camera's centre (same frames per input), which leaves the free
    region; free filters (kernels as wide as the image) get neither (no guard band that fits holds
    them, and a packed grid would put their tails on the neighbours), so the encodings cannot do
    better for them than for the spread layout;
(b) an optics-aware student: its phase mask is already what the SLM shows.

Both go through the Fourier SLM's active phase table (the calibration in force) to gray levels.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from calibration.session import amplitude_table_for, describe, phase_table_for
from drivers.bench import BenchSpec
from labctl.data import load_dataset
from labctl.data.errors import DataError
from labctl.masks.encoding import ENCODINGS, double_phase
from labctl.masks.filter_bank import fourier_masks
from labctl.masks.iterative import IterativeEncoding, group_regions, iterative_phase, panel_region_error
from labctl.masks.mask_file import MaskFile, MaskFileError
from labctl.masks.optimise import PhaseOptimisation, optimise_phase
from labctl.masks.twin_check import TwinCheck, twin_check
from labctl.models.bench_layout import layout_for
from labctl.models.checkpoint import LoadedCheckpoint, load_checkpoint
from labctl.models.optics_aware import ideal_affine
from labctl.optics.layout import OpticalLayout, guard_for_kernel, images_of, modulator_amplitudes
from labctl.records.provenance import software_provenance


#: the percentile of a mask's amplitudes that double-phase encoding scales to 1 (above it: clipped);
#: measured in benchmarks/optical_parity.md
DOUBLE_PHASE_CLIP_PERCENTILE = 30.0

#: where the calibrated panel (its fringing and fill factor) adds more than this to an iterative or
#: double-phase export's region error over an ideal panel's, the export will read well below its
#: digital model: ``labctl export-masks`` says so, and its ``auto`` encoding optimises through the
#: calibrated twin instead. Measured (benchmarks/optical_parity.md, the seed-0 student, 1 000
#: fashion-mini test images), the iterative export: 0.10 added (the embedded panel, 0.36-px
#: fringing) reads 0.3 below digital, 0.26 (0.39 px) 3.0 below, 0.36 (0.42 px) 5.1, 1.1 (0.50 px) 32,
#: 1.9 (0.62 px) and 2.4 (0.70 px) near chance. (What an encoding loses on an ideal panel is its
#: own: double-phase, 0.46 ideal, reads 4.6 below on the embedded bench.)
PANEL_ADDED_ERROR_WARNING = 0.15

#: the ``auto`` encoding keeps the data-free iterative export where the back end, reading it through
#: the calibrated twin, loses at most this (a fraction) of the digital model's accuracy on training
#: images it was not fitted on (:mod:`labctl.masks.twin_check`); else it optimises and keeps whichever
#: of the two reads better there (where the panel spoils the iterative field it optimises unchecked,
#: and checks what it made). Measured (1 792 scored training images): the full Fashion-MNIST seed-0
#: student's iterative export lost 5.6 points there (3.6 on the test set through the bench), its
#: optimised one 0.95 after 60 steps (0.75) and 1.45 after the default 300 (1.15); fashion-mini
#: students' iterative exports 0.7 (0.8), and 1.9, 1.2, 3.2 (2.6, 0.6, 2.4) for three others.
AUTO_TWIN_CHECK_LOSS = 0.01

#: ``on_stage(stage, done, total)``: what export_masks is doing, for a progress display
StageHook = Callable[[str, int, int], None]

#: training images the optimised encoding is fitted on, and the twin check's after them (the first
#: ``labctl.masks.twin_check.FIT_IMAGES`` of those fit the per-channel scale, the rest are scored);
#: with fewer than ``MIN_CHECK_IMAGES`` for the check, ``auto`` keeps the data-free export unchecked
OPTIMISE_IMAGES = 256
TWIN_CHECK_IMAGES = 2048
MIN_CHECK_IMAGES = 64

#: an optics-aware student trained through a panel whose fringing (SLM px) differs from the bench's
#: calibrated one by more than this is not shown as it was trained; ``labctl export-masks`` says so
PANEL_FRINGING_MISMATCH_PX = 0.1

#: the same for the input modulator's leak (field over full on): a student trained with no leak read
#: 84.1 % through the embedded bench (leak 0.023), 85.0 trained with it (`make demo`'s student)
INPUT_LEAK_MISMATCH = 0.005


def export_masks(
    checkpoint: str | Path,
    spec: BenchSpec,
    out: str | Path,
    *,
    encoding: str = ENCODINGS[0],
    data=None,
    optimisation: PhaseOptimisation = PhaseOptimisation(),
    iterative: IterativeEncoding = IterativeEncoding(),
    overwrite: bool = False,
    on_stage: StageHook = lambda stage, done, total: None,
) -> MaskFile:
    """Write the mask file for ``checkpoint`` on the bench ``spec``; returns it.

    ``data`` (a :class:`labctl.data.Dataset`; default: the one the student was trained on) gives the
    training images the optimised encoding of an SCLC student is fitted on and ``auto``'s twin check
    reads. ``on_stage(stage, done, total)`` follows the long steps (encoding, twin check, optimisation).
    """
    if encoding not in ENCODINGS:
        raise MaskFileError(f"unknown encoding {encoding!r}; choose one of {', '.join(ENCODINGS)}")
    out = Path(out)
    if out.exists() and not overwrite:
        raise MaskFileError(f"{out} exists; choose another --out (mask files are never overwritten)")
    student = load_checkpoint(checkpoint)
    description = describe(spec)  # opens the bench only if it was never described
    fourier = description.devices["fourier_slm"]
    slm_info = {"identity": fourier.identity.as_dict(), "rows": fourier.rows, "cols": fourier.cols,
                "pitch_m": fourier.pitch_m, "bit_depth": fourier.bit_depth}
    table = phase_table_for(spec, description)
    amplitudes = amplitude_table_for(spec, description)
    if student.kind == "optics_aware":
        layout, phase, method, extra = _optics_aware(student)
    elif student.kind == "sclc":
        front = student.model.front
        guard = guard_for_kernel(front.kernel_extent) if front.kernel_support else 0
        layout = layout_for(description, _image_size(student), front.out_channels, guard_image_px=guard,
                            packed=bool(front.kernel_support), table=table, amplitudes=amplitudes)
        layout, phase, method, extra = _collapsed(student, layout, encoding, data, optimisation, iterative, on_stage)
    else:
        raise MaskFileError(
            f"{student.path} is a {student.kind!r} model; only SCLC and optics-aware students have optical masks"
        )
    masks = MaskFile(
        phase_rad=phase,
        gray=table.gray_for_phase(phase),
        method=method,
        layout=layout,
        model={"kind": student.kind, "checkpoint": str(Path(student.path).resolve()), "sha256": student.sha256},
        slm=slm_info,
        calibration={"slm_phase": table.record_id},
        extra=extra | {"panel": {"fringing_sigma_px": table.fringing_sigma_px, "fill_factor": table.fill_factor},
                       "input_modulator": {"leak_amplitude": amplitudes.leak_amplitude, "amplitude_table": amplitudes.record_id},
                       "provenance": software_provenance(), "bench_file": str(spec.source),
                       "bench_description": description.to_dict()},
    )
    masks.check_bench(description, table)
    masks.save(out, overwrite=overwrite)
    return masks


def _image_size(student: LoadedCheckpoint) -> int:
    return int(student.model.config.size)


def _optics_aware(student: LoadedCheckpoint) -> tuple[OpticalLayout, np.ndarray, str, dict]:
    model = student.model
    with torch.no_grad():
        phase = model.phase_mask().detach().cpu().numpy().astype(np.float64)
    return model.layout, np.mod(phase, 2 * np.pi), "optics-aware", {}


def _collapsed(
    student: LoadedCheckpoint, layout: OpticalLayout, encoding: str, data, optimisation: PhaseOptimisation,
    iterative: IterativeEncoding, on_stage: StageHook,
) -> tuple[OpticalLayout, np.ndarray, str, dict]:
    front = student.model.front
    if front.out_size != front.size:
        raise MaskFileError(
            f"{student.path}: spectral pooling ({front.size} -> {front.out_size} px) changes the output sampling, "
            "which a single 4f pass cannot; export a student without pooling or train an optics-aware one"
        )
    with torch.no_grad():
        bank = front.collapse()
    masks = fourier_masks(bank, layout)
    support = front.kernel_extent if front.kernel_support else 0
    extra: dict = {"encoding": encoding, "kernel_support": front.kernel_support, "guard_image_px": layout.guard_image_px}
    regions = group_regions(layout, support)
    if encoding == "double-phase":
        encoded = [double_phase(mask, DOUBLE_PHASE_CLIP_PERCENTILE) for mask in masks]
        extra |= {"amplitude_scale": [peak for _, peak in encoded], "clip_percentile": DOUBLE_PHASE_CLIP_PERCENTILE}
        phases = [phase for phase, _ in encoded]
        return layout, _as_file_shape(phases), "sclc-double-phase", extra | _panel_errors(phases, masks, regions, layout)
    phases, summaries = [], []
    for g, (mask, region) in enumerate(zip(masks, regions)):
        on_stage("iterative encoding", g, len(masks))
        phase, summary = iterative_phase(mask, region, np.angle(mask), iterative)
        phases.append(phase)
        summaries.append(summary)
    extra |= {"iterations": iterative.iterations, **_weighted(summaries, layout)}
    errors = _panel_errors(phases, masks, regions, layout)
    if encoding == "iterative":
        return layout, _as_file_shape(phases), "sclc-iterative", extra | errors
    checks: dict[str, TwinCheck] = {}
    if encoding == "auto" and panel_added_error(errors) <= PANEL_ADDED_ERROR_WARNING:
        try:
            data = data if data is not None else _student_data(student, layout)
        except DataError as error:  # the data-free export stands; say why it was not checked
            return layout, _as_file_shape(phases), "sclc-iterative", extra | errors | {"twin_check": {"skipped": str(error)}}
        fit_images, check_images = _training_images(data)
        if len(check_images[0]) < MIN_CHECK_IMAGES:
            skipped = _too_few(data, check_images)
            return layout, _as_file_shape(phases), "sclc-iterative", extra | errors | {"twin_check": {"skipped": skipped}}
        on_stage("twin check of the iterative encoding", 0, 1)
        checks["iterative"] = twin_check(student.model, layout, phases, *check_images, data.task)
        if checks["iterative"].loss <= AUTO_TWIN_CHECK_LOSS:
            return layout, _as_file_shape(phases), "sclc-iterative", extra | errors | {"twin_check": _as_dicts(checks)}
    else:
        if encoding == "auto":  # why the iterative encoding was not enough
            extra |= {"iterative_panel_region_error": errors["panel_region_error"], "iterative_ideal_region_error":
                      errors["ideal_region_error"], "iterative_panel_added_error": panel_added_error(errors)}
        data = data if data is not None else _student_data(student, layout)
        fit_images, check_images = _training_images(data)
    iterative_phases, iterative_extra = list(phases), extra | errors
    images = torch.from_numpy(fit_images)
    amplitudes = torch.from_numpy(modulator_amplitudes(fit_images, layout))
    summaries = []
    for g in range(layout.channel_groups):
        group_bank = bank[list(layout.group_channels(g))]
        stage = f"optimising mask {g + 1} of {layout.channel_groups}"
        phases[g], summary = optimise_phase(phases[g], group_bank, layout, images, amplitudes, ideal_affine(layout),
                                            optimisation, lambda step, loss: on_stage(stage, step + 1, optimisation.steps),
                                            support=support)
        summaries.append(summary)
    extra |= {"optimisation": vars(optimisation), **_weighted(summaries, layout)}
    if encoding == "auto" and len(check_images[0]) < MIN_CHECK_IMAGES:  # the fringing branch on a small split
        extra["twin_check"] = {"skipped": _too_few(data, check_images)}
    elif encoding == "auto":  # how it reads; the better of the two is kept
        on_stage("twin check of the optimised encoding", 0, 1)
        checks["optimised"] = twin_check(student.model, layout, phases, *check_images, data.task)
        if "iterative" in checks and checks["optimised"].optical < checks["iterative"].optical:
            return layout, _as_file_shape(iterative_phases), "sclc-iterative", iterative_extra | {"twin_check": _as_dicts(checks)}
        extra["twin_check"] = _as_dicts(checks)
    return layout, _as_file_shape(phases), "sclc-optimised", extra | _panel_errors(phases, masks, regions, layout)


def _student_data(student: LoadedCheckpoint, layout: OpticalLayout):  # noqa: ANN202 - a labctl.data.Dataset
    """The data set the student was trained on, at the layout's image size."""
    return load_dataset(student.meta.get("data", "digits"), size=layout.image_size)


def _training_images(data) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:  # noqa: ANN001
    """The optimised encoding's training images (the first ``OPTIMISE_IMAGES``, at most half the
    split) and, after them, the twin check's ``TWIN_CHECK_IMAGES`` images with their targets."""
    first = min(OPTIMISE_IMAGES, len(data.train) // 2)
    images, targets = images_of(data.train, first + TWIN_CHECK_IMAGES)
    return images[:first], (images[first:], targets[first:])


def _too_few(data, check_images: tuple[np.ndarray, np.ndarray]) -> str:  # noqa: ANN001
    return f"{len(data.train)} training images leave {len(check_images[0])} for a twin check (at least {MIN_CHECK_IMAGES})"


def _as_dicts(checks: dict[str, TwinCheck]) -> dict[str, dict[str, float | str]]:
    return {name: check.to_dict() for name, check in checks.items()}


def _panel_errors(phases: list[np.ndarray], masks: list[np.ndarray], regions: list[np.ndarray], layout: OpticalLayout) -> dict:
    """The encoding's region error on an ideal panel and on the calibrated one (the layout's fringing
    and fill factor), averaged over the groups (:func:`labctl.masks.iterative.panel_region_error`)."""
    per_group = [{"ideal_region_error": panel_region_error(p, m, r),
                  "panel_region_error": panel_region_error(p, m, r, layout.fringing_sigma_px, layout.fill_factor)}
                 for p, m, r in zip(phases, masks, regions)]
    return _weighted(per_group, layout)


def panel_added_error(errors: dict[str, float]) -> float:
    """What the calibrated panel adds to an encoding's region error (``_panel_errors``' figures)."""
    return errors["panel_region_error"] - errors["ideal_region_error"]


def _weighted(summaries: list[dict[str, float]], layout: OpticalLayout) -> dict[str, float]:
    """One figure per file: each summary figure averaged over the groups (each weighs its channels)."""
    weights = [len(layout.group_channels(g)) for g in range(layout.channel_groups)]
    return {key: float(np.average([s[key] for s in summaries], weights=weights)) for key in summaries[0]}


def _as_file_shape(phases: list[np.ndarray]) -> np.ndarray:
    """(rows, cols) for one mask, (groups, rows, cols) for multiplexed channel groups."""
    return phases[0] if len(phases) == 1 else np.stack(phases)
