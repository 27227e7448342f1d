"""The calibration a run uses: registration affine (and lens distortion), camera correction, and the records' ids.

Without records the run still works, on the nominal geometry, raw frames, a linear SLM phase and a
linear input modulator, and says which calibration to run; the ids (or ``None``) go into every run
record. (The phase and amplitude tables themselves are installed on the SLMs by the bench session.)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from calibration.session import BenchSession
from labctl.models.optics_aware import ideal_affine
from labctl.optics.layout import OpticalLayout


class MissingCalibrationWarning(UserWarning):
    """A bench without some calibration record: results will suffer; the message says what to run."""


@dataclass
class BenchCalibration:
    affine: np.ndarray  # 2x3, input-modulator px (col, row) -> camera px (col, row)
    correct_frames: Callable[[np.ndarray], np.ndarray] | None
    record_ids: dict[str, str | None]
    missing: list[str] = field(default_factory=list)
    #: the registration's lens distortion after ``affine`` (None: none measured, or no registration)
    camera_warp: Callable[[np.ndarray], np.ndarray] | None = None

    @classmethod
    def for_session(cls, session: BenchSession, layout: OpticalLayout, warn: bool = True) -> BenchCalibration:
        """The open session's calibration, with the nominal geometry where it has no registration."""
        missing = []
        affine = session.input_to_camera
        if affine is None:
            affine = ideal_affine(layout)
            missing.append("registration")
        if session.correct_frames is None:
            missing.append("camera")
        ids = session.record_ids
        if ids["slm_phase"] == "linear":
            missing.append("slm")
        if ids["input_response"] is None:  # images shown as if amplitude were linear in gray
            missing.append("input")
        source = session.spec.source
        if missing and warn:
            warnings.warn(
                f"bench {source} has no {', '.join(missing)} calibration; using nominal values "
                f"(run `labctl calibrate {'all' if len(missing) > 1 else missing[0]} --bench {source} --out DIR`)",
                MissingCalibrationWarning,
                stacklevel=2,
            )
        return cls(affine, session.correct_frames, ids, missing, session.camera_warp)
