"""Frame acquisition for calibrations, through the device interfaces only.

Two ways light reaches the camera: a fixed input pattern with a series of Fourier-SLM patterns
(one software-triggered capture each, since LC SLMs hold one pattern at a time), or a fixed
Fourier pattern with a series of input patterns (a hardware-triggered sequence where the input
modulator and camera offer it, software triggering otherwise). Raw frames go into a
:class:`RawLog` that is written to disk whatever happens, so nothing measured is lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from calibration.errors import EmptyFrames, SaturatedFrames
from calibration.spots import brightest
from drivers.bench import Bench
from drivers.camera import FrameBatch, TriggerSource
from drivers.capabilities import readout_s
from drivers.errors import UnsupportedFeature

Progress = Callable[[str, float], None]


def no_progress(message: str, fraction: float) -> None:
    """Default progress callback: silent."""


class RawLog:
    """Raw measurements of one calibration, saved to ``<out_dir>/raw/<name>.npz``."""

    def __init__(self, out_dir: str | Path, name: str) -> None:
        self.path = Path(out_dir) / "raw" / f"{name}.npz"
        self.arrays: dict[str, np.ndarray] = {}

    def add(self, key: str, value: np.ndarray | float | list) -> None:
        self.arrays[key] = np.asarray(value)

    def save(self) -> str:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(self.path, **self.arrays)
        return str(self.path)


@contextmanager
def kept_on_failure(log: RawLog) -> Iterator[RawLog]:
    """Save the raw log on the way out, and name it in a calibration error's message."""
    try:
        yield log
    except Exception as exc:
        path = log.save()
        if hasattr(exc, "raw_path") and exc.raw_path is None:
            exc.raw_path = path
            exc.args = (f"{exc.args[0]} (raw measurements kept in {path})",)
        raise
    log.save()


def frame_timeout_s(bench: Bench) -> float:
    cam = bench.camera
    return 1.0 + 4 * (cam.exposure_s + readout_s(cam) + bench.fourier_slm.settle_time_s)


def capture_fourier_series(bench: Bench, patterns: Iterable[np.ndarray], frames_each: int = 1) -> np.ndarray:
    """Show each Fourier-SLM gray pattern and average ``frames_each`` frames: (n, rows, cols) float32."""
    cam, slm = bench.camera, bench.fourier_slm
    cam.trigger_source = TriggerSource.SOFTWARE
    cam.discard_unread()
    out = []
    for gray in patterns:
        slm.write_gray(gray)
        acc = np.zeros(cam.grid.shape, np.float64)
        for _ in range(frames_each):
            acc += cam.capture(timeout_s=frame_timeout_s(bench)).data
        out.append((acc / frames_each).astype(np.float32))
    return np.stack(out)


def capture_input_series(bench: Bench, amplitudes: np.ndarray) -> np.ndarray:
    """Frames (n, rows, cols) uint16 for input-modulator amplitude patterns (n, rows, cols) in [0, 1]."""
    cam, inp = bench.camera, bench.input_slm
    cam.discard_unread()
    hardware = False
    if inp.sequence_limit > 1:
        try:
            cam.trigger_source = TriggerSource.HARDWARE
            hardware = True
        except UnsupportedFeature:
            pass
    try:
        if hardware:
            batches: list[FrameBatch] = []
            step = inp.sequence_limit
            for start in range(0, len(amplitudes), step):
                chunk = amplitudes[start : start + step]
                inp.write_amplitude(chunk)
                batches.append(cam.read_frames(len(chunk), timeout_s=frame_timeout_s(bench) * len(chunk)))
            return np.concatenate([b.data for b in batches])
        cam.trigger_source = TriggerSource.SOFTWARE
        frames = []
        for image in amplitudes:
            inp.write_amplitude(image)
            frames.append(cam.capture(timeout_s=frame_timeout_s(bench)).data)
        return np.stack(frames)
    finally:
        cam.trigger_source = TriggerSource.SOFTWARE


def point_source(bench: Bench, size: int = 1) -> np.ndarray:
    """Input amplitude with one ``size``×``size`` block of full-on pixels at the modulator's centre."""
    rows, cols = bench.input_slm.grid.shape
    amp = np.zeros((rows, cols))
    r0, c0 = rows // 2 - size // 2, cols // 2 - size // 2
    amp[r0 : r0 + size, c0 : c0 + size] = 1.0
    return amp


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


def peak_over(on: np.ndarray, off: np.ndarray) -> tuple[float, float]:
    """(peak DN, dark DN) of the light in ``on`` that ``off`` lacks; hot pixels, bright in both, do not count."""
    diff = on.astype(np.float64) - off
    x, y = brightest(diff)
    r, c = int(y), int(x)
    dark = float(np.median(off))
    return float(min(on[r, c], max(diff[r, c], 0.0) + dark)), dark


def set_exposure_for_peak(bench: Bench, measure: Callable[[], tuple[float, float]], target_fraction: float = 0.6) -> float:
    """Scale the exposure so the peak of what matters lands at ``target_fraction`` of the range above dark.

    ``measure()`` captures at the current exposure and returns (peak DN, dark DN). Iterates a few
    times (clipping makes one step inaccurate); EmptyFrames when even the longest exposure shows no
    light, SaturatedFrames when even the shortest clips.
    """
    cam = bench.camera
    lo, hi = cam.exposure_limits_s
    full = cam.max_level
    for _ in range(8):
        peak, dark = measure()
        exposure = cam.exposure_s
        signal, room = peak - dark, full - dark
        if peak >= full - 1:  # clipped: shorten a lot and look again
            new = max(lo, exposure / 8)
        elif signal <= 0.02 * room:
            new = min(hi, exposure * 16)
        else:
            new = float(np.clip(exposure * target_fraction * room / signal, lo, hi))
            if abs(new / exposure - 1) < 0.1:
                return exposure
        if new == exposure:
            break
        cam.exposure_s = new
    peak, dark = measure()
    if peak - dark < 0.05 * (full - dark):
        raise EmptyFrames(
            f"{cam.name}: too little light ({peak - dark:.1f} DN above dark at exposure "
            f"{cam.exposure_s * 1e3:g} ms, the longest tried); check the laser, the shutter and the alignment"
        )
    if peak >= full - 1:
        raise SaturatedFrames(
            f"{cam.name}: still saturated at the shortest exposure {cam.exposure_s * 1e3:g} ms; "
            "lower the laser power or add a neutral-density filter"
        )
    return cam.exposure_s


def dark_frames(bench: Bench, n: int) -> np.ndarray:
    """``n`` frames with the beam blocked by the shutter (or the input modulator dark if there is none)."""
    cam = bench.camera
    cam.trigger_source = TriggerSource.SOFTWARE
    cam.discard_unread()
    shutter = bench.shutter
    if shutter is not None:
        shutter.block_beam()
        try:
            return np.stack([cam.capture(timeout_s=frame_timeout_s(bench)).data for _ in range(n)])
        finally:
            shutter.open_beam()
    bench.input_slm.write_amplitude(np.zeros(bench.input_slm.grid.shape))
    return np.stack([cam.capture(timeout_s=frame_timeout_s(bench)).data for _ in range(n)])
