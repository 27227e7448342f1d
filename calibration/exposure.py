"""The one exposure controller, for calibration sweeps and the runner alike, and the checks that the
light of a measurement is on scale.

The controller knows nothing of what is measured: a ``measure()`` function captures at the current
exposure (through the :class:`~calibration.acquisition.Acquirer`, so with its retries) and returns
(peak DN, dark DN) of what matters — a diffraction order, a spot, the brightest part of a batch of
inputs. It refuses with a message that says what to change on the bench when no exposure within
the camera's limits puts that peak on scale.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from calibration.acquisition import Acquirer
from calibration.errors import CalibrationError, EmptyFrames, SaturatedFrames
from calibration.spots import brightest
from drivers.bench import Bench
from drivers.camera import Camera

Measure = Callable[[], tuple[float, float]]


def set_exposure_for_peak(camera: Camera, measure: Measure, target_fraction: float = 0.6, rounds: int = 8) -> float:
    """Scale the exposure so the peak of what matters lands at ``target_fraction`` of the range above dark.

    A peak at full scale counts as clipped: the exposure is cut to an eighth and measured again; a
    peak barely above dark makes it 16 times longer; otherwise one proportional step, repeated
    (clipping and nonlinearity make one step inaccurate) until it changes the exposure by under 10 %.
    Returns the exposure set. EmptyFrames when even the longest exposure tried stays dark,
    SaturatedFrames when even the shortest clips.
    """
    lo, hi = camera.exposure_limits_s
    full = camera.max_level
    for _ in range(rounds):
        peak, dark = measure()
        exposure = camera.exposure_s
        signal, room = peak - dark, full - dark
        if peak >= full - 1:
            new = max(lo, exposure / 8)
        elif signal <= 0.02 * room:
            new = min(hi, exposure * 16)
        else:
            wanted = exposure * target_fraction * room / signal
            if abs(wanted / exposure - 1) < 0.1:
                return exposure
            new = float(np.clip(wanted, lo, hi))  # at a limit: measured once more and checked below
        if new == exposure:
            break
        camera.exposure_s = new
    peak, dark = measure()
    if peak - dark < 0.05 * (full - dark):
        raise EmptyFrames(
            f"{camera.name}: frames stay dark ({peak - dark:.1f} DN above the dark level of {dark:.0f} DN) even at "
            f"{camera.exposure_s * 1e3:g} ms, the longest exposure tried; check the laser (is the beam on?), "
            "the shutter and the alignment"
        )
    if peak >= full - 1:
        raise SaturatedFrames(
            f"{camera.name}: frames saturate even at {camera.exposure_s * 1e3:g} ms, the shortest exposure tried; "
            "lower the laser power or add a neutral-density filter"
        )
    return camera.exposure_s


def auto_exposure(acquirer: Acquirer, amplitudes: np.ndarray, target_fraction: float = 0.7,
                  region: np.ndarray | None = None) -> float:
    """Exposure for a batch of inputs (n, rows, cols) under the acquirer's mask: the brightest light any
    of them adds over a dark input (:func:`peak_over`, so hot pixels, bright in both, do not count) at
    ``target_fraction`` of the range above dark. ``region``: bool (camera rows, cols), the camera pixels
    that are read (None: all); light elsewhere (a mask's zero order between the tiles) may clip."""
    cam = acquirer.bench.camera
    if region is not None and not region.any():
        raise CalibrationError(f"{cam.name}: no camera pixel is read (every tile falls off the sensor); check the registration and the layout")
    dark_input = np.zeros_like(amplitudes[:1])

    def measure() -> tuple[float, float]:
        frames = acquirer.capture(np.concatenate([amplitudes, dark_input]), what="exposure frames").data
        readings = [peak_over(frame, frames[-1], region) for frame in frames[:-1]]
        return max(peak for peak, _ in readings), readings[0][1]

    return set_exposure_for_peak(cam, measure, target_fraction)


def peak_over(on: np.ndarray, off: np.ndarray, region: np.ndarray | None = None) -> tuple[float, float]:
    """(peak DN, dark DN) of the light in ``on`` that ``off`` lacks, within ``region`` (bool; None: the
    whole frame); hot pixels, bright in both, do not count."""
    diff = on.astype(np.float64) - off
    if region is not None and (region.shape != diff.shape or not region.any()):
        raise CalibrationError(f"the exposure region must be a non-empty {diff.shape} mask; got {region.shape}, {int(region.sum())} pixels")
    x, y = brightest(diff, region=region)
    r, c = int(y), int(x)
    dark = float(np.median(off))
    return float(min(on[r, c], max(diff[r, c], 0.0) + dark)), dark


def check_frames(bench: Bench, values: np.ndarray, dark_level: float, noise_dn: float, what: str) -> None:
    """Refuse clipped or lightless measurement windows with a message saying what to change."""
    cam = bench.camera
    top = float(np.max(values))
    if top >= cam.max_level - 0.5:
        raise SaturatedFrames(
            f"{cam.name}: {what} reached the full scale ({cam.max_level} DN) at exposure {cam.exposure_s * 1e3:g} ms; "
            "lower the exposure (or the laser power)"
        )
    if top <= dark_level + 6 * max(noise_dn, 1.0):
        raise EmptyFrames(
            f"{cam.name}: {what} shows no light above the dark level ({dark_level:.1f} DN) at exposure "
            f"{cam.exposure_s * 1e3:g} ms; check the laser, the shutter and the alignment"
        )
