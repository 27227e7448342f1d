"""Automatic exposure: the brightest pixel of the frames at a set fraction of full scale."""

from __future__ import annotations

import numpy as np

from drivers.errors import InvalidSetting
from labctl.runner.acquisition import BatchAcquirer


class ExposureError(InvalidSetting):
    """No exposure within the camera's limits gives a usable signal."""


def auto_exposure(acquirer: BatchAcquirer, amplitudes: np.ndarray, target: float = 0.7, rounds: int = 6) -> float:
    """Set the camera's exposure so the brightest frame peaks near ``target`` of full scale.

    Scales the exposure by target/peak (signal above the dark level, peak = 99.9th percentile so a
    few hot pixels do not decide), halving it while saturated, within the camera's limits.
    Returns the exposure set.
    """
    cam = acquirer.bench.camera
    lo, hi = cam.exposure_limits_s
    full = float(cam.max_level)
    dark = None
    peak, saturated = 0.0, False
    for _ in range(max(1, rounds)):
        frames = acquirer.capture(amplitudes).data.astype(np.float64)
        if dark is None:
            dark = float(np.percentile(frames, 1))
        peak = float(np.percentile(frames, 99.9))  # a few hot pixels do not set the exposure
        saturated = bool(np.mean(frames >= full) > 1e-4)
        if saturated:
            new = max(lo, cam.exposure_s / 2)
        else:
            signal = peak - dark
            if signal <= 0.02 * full:
                new = min(hi, cam.exposure_s * 10)
            else:
                new = float(np.clip(cam.exposure_s * (target * full - dark) / signal, lo, hi))
        if np.isclose(new, cam.exposure_s, rtol=0.05):
            break
        cam.exposure_s = new
    else:
        frames = acquirer.capture(amplitudes).data.astype(np.float64)  # the last exposure set, measured
        peak = float(np.percentile(frames, 99.9))
        saturated = bool(np.mean(frames >= full) > 1e-4)
    if saturated:
        raise ExposureError(
            cam.name, f"frames saturate even at {cam.exposure_s:g} s (shortest tried); attenuate the beam or lower the laser power"
        )
    if peak - dark <= 0.02 * full:
        raise ExposureError(
            cam.name, f"frames stay dark (peak {peak:.0f} DN of {full:.0f}) even at {cam.exposure_s:g} s; is the beam on?"
        )
    return cam.exposure_s
