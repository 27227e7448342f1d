"""The bench session: the one place that opens the devices of a bench file and applies the
calibration records its ``[calibration]`` table names as active — the phase table on the Fourier
SLM, the camera correction and the registration for whoever reads frames.

Devices open in the bench file's role order (modulators first, then the camera, then instruments);
each record's device identity and wavelength are checked against the open devices before anything
is applied (``force`` overrides the identity check).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from calibration.active import ActiveCalibration, active_records, phase_table_from_record
from calibration.camera_response import CameraCorrection
from calibration.records import KINDS
from calibration.registration import Registration
from drivers.bench import Bench, BenchSpec


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

    @property
    def record_ids(self) -> dict[str, str | None]:
        """Id of each kind's active record; the phase table's id ("linear" when uncalibrated)."""
        ids: dict[str, str | None] = {kind: getattr(self.records, kind).id if getattr(self.records, kind) else None for kind in KINDS}
        ids["slm_phase"] = self.bench.fourier_slm.phase_table.record_id
        return ids


@contextmanager
def open_session(spec: BenchSpec, kinds: tuple[str, ...] = KINDS, force: bool = False) -> Iterator[BenchSession]:
    """Open the bench of ``spec`` and apply its active records of ``kinds``; close it on the way out.

    A calibration run passes ``kinds=("slm_phase",)``: it measures the camera and the registration
    anew, so records of a replaced camera must not stop it."""
    with spec.open() as bench:
        active = active_records(spec, bench, force=force, kinds=kinds)
        if active.slm_phase is not None:
            bench.fourier_slm.phase_table = phase_table_from_record(active.slm_phase)
        correct = CameraCorrection.from_record(active.camera).apply if active.camera is not None else None
        affine = (np.asarray(Registration.from_record(active.registration).input_to_camera, dtype=np.float64)
                  if active.registration is not None else None)
        yield BenchSession(spec, bench, active, correct, affine)
