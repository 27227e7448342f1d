"""The calibration a run uses: registration affine, camera correction, and the records' ids.

Without records the run still works, on the nominal geometry and raw frames, and says which
calibration to run; the ids (or ``None``) go into every run record.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from drivers.bench import Bench, BenchSpec
from labctl.models.optical_layout import OpticalLayout
from labctl.models.optics_aware import ideal_affine


class MissingCalibrationWarning(UserWarning):
    """A bench without some calibration record: results will suffer; the message says what to run."""


@dataclass
class BenchCalibration:
    affine: np.ndarray  # 2x3, input-modulator px (col, row) -> camera px (col, row)
    correct_frames: Callable[[np.ndarray], np.ndarray] | None
    record_ids: dict[str, str | None]
    missing: list[str] = field(default_factory=list)

    @classmethod
    def for_bench(cls, spec: BenchSpec, bench: Bench, layout: OpticalLayout, warn: bool = True) -> BenchCalibration:
        from calibration.active import active_records
        from calibration.camera_response import CameraCorrection
        from calibration.registration import Registration

        active = active_records(spec, bench)
        missing = []
        if active.registration is not None:
            affine = np.asarray(Registration.from_record(active.registration).input_to_camera, dtype=np.float64)
        else:
            affine = ideal_affine(layout)
            missing.append("registration")
        correct = None
        if active.camera is not None:
            correct = CameraCorrection.from_record(active.camera).apply
        else:
            missing.append("camera")
        if bench.fourier_slm.phase_table.record_id == "linear":
            missing.append("slm")
        ids = {
            "slm_phase": bench.fourier_slm.phase_table.record_id,
            "camera": active.camera.id if active.camera is not None else None,
            "registration": active.registration.id if active.registration is not None else None,
        }
        if missing and warn:
            warnings.warn(
                f"bench {spec.source} has no {', '.join(missing)} calibration; using nominal values "
                f"(run `labctl calibrate {'all' if len(missing) > 1 else missing[0]} --bench {spec.source} --out DIR`)",
                MissingCalibrationWarning,
                stacklevel=2,
            )
        return cls(affine, correct, ids, missing)
