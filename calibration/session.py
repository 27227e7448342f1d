"""The bench session: the one place that opens the devices of a bench file and applies the
calibration records its ``[calibration]`` table names as active — the phase table on the Fourier
SLM, the amplitude table on the input modulator (every image is then shown through the measured
input response), the camera correction and the registration for whoever reads frames — and that
takes the bench's description (:mod:`drivers.description`), saved beside the bench file.

Devices open in the bench file's role order (modulators first, then the camera, then instruments);
each record's device identity and wavelength are checked against the open devices before anything
is applied (``force`` overrides the identity check).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from calibration.active import (
    ActiveCalibration, active_amplitude_table, active_phase_table, active_records, amplitude_table_from_record, phase_table_from_record,
)
from calibration.camera_response import CameraCorrection
from calibration.records import KINDS
from calibration.registration import Registration
from drivers.amplitude_table import AmplitudeTable
from drivers.bench import Bench, BenchSpec
from drivers.description import BenchDescription, BenchDescriptionError, description_path
from drivers.phase_table import PhaseTable


class UnsavedDescriptionWarning(UserWarning):
    """The bench description could not be written beside the bench file."""


@dataclass(frozen=True)
class BenchSession:
    """An open bench with its active calibration applied."""

    spec: BenchSpec
    bench: Bench
    records: ActiveCalibration
    #: raw frames → dark-, flat- and hot-pixel-corrected frames (None: no camera record)
    correct_frames: Callable[[np.ndarray], np.ndarray] | None
    #: 2x3 affine, input-modulator px (col, row) → camera px (col, row) (None: no registration record)
    input_to_camera: np.ndarray | None
    description: BenchDescription
    #: the registration's lens distortion, camera px → camera px after ``input_to_camera`` (None: none measured)
    camera_warp: Callable[[np.ndarray], np.ndarray] | None = None

    @property
    def record_ids(self) -> dict[str, str | None]:
        """Id of each kind's active record; the phase table's id ("linear" when uncalibrated)."""
        return dict(self.description.calibration)


def _record_ids(active: ActiveCalibration, table: PhaseTable) -> dict[str, str | None]:
    ids: dict[str, str | None] = {kind: record.id if (record := active.of_kind(kind)) else None for kind in KINDS}
    ids["slm_phase"] = table.record_id
    return ids


@contextmanager
def open_session(spec: BenchSpec, kinds: tuple[str, ...] = KINDS, force: bool = False) -> Iterator[BenchSession]:
    """Open the bench of ``spec`` and apply its active records of ``kinds``; close it on the way out.

    The bench's description is saved beside its bench file whenever it differs from the saved one
    (first open, a device replaced, another calibration). A calibration run applies only the SLM
    phase record and, unless it measures the input response anew, the input-response record: it
    measures the camera and the registration anew, so records of a replaced camera must not stop it."""
    with spec.open() as bench:
        active = active_records(spec, bench, force=force, kinds=kinds)
        if active.slm_phase is not None:
            bench.fourier_slm.phase_table = phase_table_from_record(active.slm_phase)
        if active.input_response is not None:
            bench.input_slm.amplitude_table = amplitude_table_from_record(active.input_response)
        correct = CameraCorrection.from_record(active.camera).apply if active.camera is not None else None
        registration = Registration.from_record(active.registration) if active.registration is not None else None
        affine = np.asarray(registration.input_to_camera, dtype=np.float64) if registration is not None else None
        warp = registration.distortion if registration is not None else None
        description = BenchDescription.of(bench, _record_ids(active, bench.fourier_slm.phase_table))
        if kinds == KINDS:
            _save_beside(spec, description)
        yield BenchSession(spec, bench, active, correct, affine, description, warp)


def _save_beside(spec: BenchSpec, description: BenchDescription) -> None:
    """Keep the description beside the bench file; a folder that cannot be written (a shared, read-only
    bench file) costs a warning, not the session: the bench is then described by opening it."""
    if spec.file is None:
        return  # an embedded or in-memory bench: nowhere to keep it
    path = description_path(spec.file)
    try:
        if BenchDescription.load(path) == description:
            return
    except BenchDescriptionError:
        pass  # none yet, or unreadable: write it anew
    try:
        description.save(path)
    except OSError as exc:
        warnings.warn(f"could not save the bench description {path} ({exc.strerror or exc}); it is taken anew at each use",
                      UnsavedDescriptionWarning, stacklevel=3)


def describe(spec: BenchSpec) -> BenchDescription:
    """The bench's description without opening it when one taken from this bench file is saved
    beside it; otherwise the bench is opened once (which saves it)."""
    if spec.file is not None:
        try:
            saved = BenchDescription.load(description_path(spec.file))
        except BenchDescriptionError:
            saved = None
        if saved is not None and saved.describes(spec):
            return saved
    with open_session(spec) as session:
        return session.description


def amplitude_table_for(spec: BenchSpec, description: BenchDescription) -> AmplitudeTable:
    """The active amplitude table of ``spec``'s input modulator, from its record (checked against the
    modulator the description names) — no device opened."""
    modulator = description.devices["input_slm"]
    return active_amplitude_table(spec, modulator.identity, modulator.bit_depth)


def phase_table_for(spec: BenchSpec, description: BenchDescription) -> PhaseTable:
    """The active phase table of ``spec``'s Fourier SLM, from its record (checked against the SLM the
    description names) — no device opened."""
    return active_phase_table(spec, description.devices["fourier_slm"].identity, description.devices["fourier_slm"].bit_depth)
