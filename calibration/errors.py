"""Exceptions of the calibration package. Each message says what to change on the bench."""

from __future__ import annotations

from drivers.errors import LabctlError


class CalibrationError(LabctlError):
    """A calibration could not produce a trustworthy result. Raw measurements are kept on disk."""

    def __init__(self, message: str, raw_path: str | None = None) -> None:
        self.raw_path = raw_path
        suffix = f" (raw measurements kept in {raw_path})" if raw_path else ""
        super().__init__(message + suffix)


class SaturatedFrames(CalibrationError):
    """Frames clipped at the camera's full scale during a sweep: lower the exposure or the laser power."""


class EmptyFrames(CalibrationError):
    """Frames held no light above the dark level: check the laser, the shutter and the alignment."""


class AmbiguousMeasurement(CalibrationError):
    """The measured response is not monotone, does not reach the needed range, or cannot be unfolded."""


class LowFringeContrast(CalibrationError):
    """Split-screen fringes too faint to demodulate: check the focus, the input grating and stray light."""


class TooFewSpots(CalibrationError):
    """Too few calibration spots were found on the camera to fit a map."""


class CalibrationRecordError(LabctlError, ValueError):
    """A calibration record file is missing, malformed or of the wrong kind."""


class CalibrationMismatch(CalibrationRecordError):
    """A record was made for another device or wavelength; load it with ``force=True`` to override."""
