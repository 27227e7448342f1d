"""Registration of the SLMs to the camera: two affine maps fitted to centroided spots.

* input modulator → camera: one small block of pixels lit at a time on a grid over the modulator
  (a hardware-triggered sequence where the bench has one); the 4f images it onto the camera.
* Fourier SLM → camera: a point source at the modulator's centre and a blazed phase ramp of spatial
  frequency k (cycles per SLM aperture) on the Fourier SLM; the first order lands at λ·f₂·k from the
  point's image (shared/REFERENCES.md). The map gives the camera pixel of that spot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calibration.acquisition import Acquirer
from calibration.exposure import peak_over, set_exposure_for_peak
from calibration.raw_log import Progress, RawLog, no_progress
from calibration.errors import CalibrationRecordError, SaturatedFrames, TooFewSpots
from calibration.records import CalibrationRecord
from calibration.slm_phase import point_image_peak
from calibration.spots import apply_affine, brightest, disc, fit_affine, point_source, refined_centroid

MIN_SPOTS = 6


@dataclass(frozen=True)
class RegistrationSettings:
    grid: int = 6  # spots per side on the input modulator
    block_px: int = 3  # side of each lit block of input pixels
    frequencies: int = 5  # ramp frequencies per axis on the Fourier SLM


@dataclass
class RegistrationResult:
    params: dict
    residuals: dict
    arrays: dict


def _spot_positions(frames: np.ndarray, background: np.ndarray, guesses: list[tuple[float, float] | None],
                    search_px: float, radius_px: float, full: int) -> tuple[np.ndarray, np.ndarray]:
    """Centroid (x, y) of the spot in each frame (NaN where none stands out); also each spot's peak DN."""
    pos = np.full((len(frames), 2), np.nan)
    peaks = np.zeros(len(frames))
    noise = 1.4826 * float(np.median(np.abs(background - np.median(background)))) + 1.0
    for i, frame in enumerate(frames):
        diff = frame.astype(np.float64) - background
        if guesses[i] is not None:
            diff = np.where(disc(diff.shape, guesses[i], search_px), diff, 0.0)
        start = brightest(diff)
        peak = float(frame[int(start[1]), int(start[0])])
        peaks[i] = peak
        if diff[int(start[1]), int(start[0])] < 10 * noise:
            continue
        x, y, _ = refined_centroid(diff, start, radius_px, background=0.0)
        pos[i] = (x, y)
    return pos, peaks


def _fit(src: np.ndarray, dst: np.ndarray, what: str, total: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ok = np.isfinite(dst).all(axis=1)
    if ok.sum() < MIN_SPOTS:
        raise TooFewSpots(
            f"{what}: found {int(ok.sum())} of {total} spots (need {MIN_SPOTS}); centre the beam and the camera on the "
            "optical axis, check the laser, or raise the exposure"
        )
    affine, resid = fit_affine(src[ok], dst[ok])
    # one pass of outlier rejection: a spot 5× the median residual off is a mis-detection
    r = np.hypot(*resid.T)
    keep = r <= max(5 * np.median(r), 0.5)
    if keep.sum() >= MIN_SPOTS and not keep.all():
        idx = np.nonzero(ok)[0]
        ok[idx[~keep]] = False
        affine, resid = fit_affine(src[ok], dst[ok])
    return affine, resid, ok


def measure_registration(acq: Acquirer, log: RawLog, settings: RegistrationSettings = RegistrationSettings(),
                         progress: Progress = no_progress) -> RegistrationResult:
    bench = acq.bench
    cam, inp, slm = bench.camera, bench.input_slm, bench.fourier_slm
    full = cam.max_level
    optics = bench.spec.optics
    out_dx = optics.wavelength_m * optics.f2_m / (slm.grid.cols * slm.grid.pitch_m)
    out_dy = optics.wavelength_m * optics.f2_m / (slm.grid.rows * slm.grid.pitch_m)
    mag = optics.f2_m / optics.f1_m

    # -- input modulator → camera ------------------------------------------------------------------------
    progress("input modulator spots", 0.0)
    acq.set_mask(np.zeros(slm.grid.shape, np.uint16))
    rows, cols = inp.grid.shape
    b = max(1, min(settings.block_px, rows // (4 * settings.grid), cols // (4 * settings.grid)))
    ys = np.linspace(0.1 * rows, 0.9 * rows - b, settings.grid).round().astype(int)
    xs = np.linspace(0.1 * cols, 0.9 * cols - b, settings.grid).round().astype(int)
    patterns, centres = [], []
    for y in ys:
        for x in xs:
            amp = np.zeros((rows, cols))
            amp[y : y + b, x : x + b] = 1.0
            patterns.append(amp)
            centres.append((x + (b - 1) / 2, y + (b - 1) / 2))
    patterns_arr = np.stack(patterns)
    centres_arr = np.asarray(centres)
    middle = patterns_arr[len(patterns_arr) // 2 + settings.grid // 2]
    def input_peak() -> tuple[float, float]:
        frames = acq.capture(np.stack([middle, np.zeros_like(middle)]), what="exposure spot").data
        return peak_over(frames[0], frames[1])

    set_exposure_for_peak(cam, input_peak, 0.6)
    background = acq.capture(np.zeros((2, rows, cols)), what="background").data.astype(np.float64).mean(axis=0)
    frames = acq.capture(patterns_arr, what="input-modulator spots").data
    spot_px = max(2.0, b * inp.grid.pitch_m * mag / cam.grid.pitch_m)
    in_pos, in_peaks = _spot_positions(frames, background, [None] * len(frames), 0, 1.5 * spot_px + 2, full)
    log.add("input_spot_pixels", centres_arr)
    log.add("input_spot_camera", in_pos)
    log.add("input_spot_peaks", in_peaks)
    log.add("input_exposure_s", cam.exposure_s)
    if np.any(in_peaks >= full):
        raise SaturatedFrames(f"{cam.name}: input-modulator spots saturate at {cam.exposure_s * 1e3:g} ms; lower the exposure")
    in_affine, in_resid, in_ok = _fit(centres_arr, in_pos, f"{cam.name}: input-modulator spots", len(patterns))

    # -- Fourier SLM → camera --------------------------------------------------------------------------------
    progress("Fourier-plane ramps", 0.5)
    acq.set_input(point_source(bench))
    px_per_kx = out_dx / cam.grid.pitch_m
    px_per_ky = out_dy / cam.grid.pitch_m
    kmax_x = 0.3 * min(cam.grid.cols / px_per_kx, slm.grid.cols)
    kmax_y = 0.3 * min(cam.grid.rows / px_per_ky, slm.grid.rows)
    kx = np.linspace(-kmax_x, kmax_x, settings.frequencies)
    ky = np.linspace(-kmax_y, kmax_y, settings.frequencies)
    kk = np.array([(x, y) for y in ky for x in kx])
    yy, xx = np.indices(slm.grid.shape)
    flat = np.zeros(slm.grid.shape, np.uint16)

    def ramp_gray(k: tuple[float, float]) -> np.ndarray:
        phase = 2 * np.pi * (k[0] * xx / slm.grid.cols + k[1] * yy / slm.grid.rows)
        return slm.phase_table.gray_for_phase(phase)

    set_exposure_for_peak(cam, lambda: point_image_peak(acq), 0.6)
    step = min(np.ptp(kx) * px_per_kx, np.ptp(ky) * px_per_ky) / max(settings.frequencies - 1, 1)
    for _ in range(4):  # a ramp can gather a spot onto fewer pixels than the flat did: back off if it clips
        zero = acq.capture_masks([flat])[0]
        acq.set_input(np.zeros(inp.grid.shape))
        off = acq.capture_masks([flat])[0]
        acq.set_input(point_source(bench))
        zero_xy = brightest(zero - off)
        ramps = acq.capture_masks((ramp_gray(k) for k in kk), what="blazed ramp")
        guesses = [(zero_xy[0] + k[0] * px_per_kx, zero_xy[1] + k[1] * px_per_ky) for k in kk]
        f_pos, f_peaks = _spot_positions(ramps, off, guesses, max(3.0, 0.4 * step), 3.0, full)
        if not np.any(f_peaks >= full) or cam.exposure_s <= cam.exposure_limits_s[0]:
            break
        cam.exposure_s = max(cam.exposure_limits_s[0], 0.5 * cam.exposure_s)
    log.add("fourier_k", kk)
    log.add("fourier_spot_camera", f_pos)
    log.add("fourier_spot_peaks", f_peaks)
    log.add("fourier_exposure_s", cam.exposure_s)
    if np.any(f_peaks >= full):
        raise SaturatedFrames(f"{cam.name}: Fourier-plane spots saturate at {cam.exposure_s * 1e3:g} ms; lower the laser power")
    f_affine, f_resid, f_ok = _fit(kk, f_pos, f"{cam.name}: Fourier-plane ramp spots", len(kk))
    progress("done", 1.0)

    rms_in = float(np.sqrt(np.mean(np.sum(in_resid**2, axis=1))))
    rms_f = float(np.sqrt(np.mean(np.sum(f_resid**2, axis=1))))
    params = {
        "input_to_camera": in_affine.tolist(),
        "fourier_to_camera": f_affine.tolist(),
        "input_spots_used": int(in_ok.sum()),
        "fourier_spots_used": int(f_ok.sum()),
        "input_block_px": b,
        "fourier_frequency_unit": "cycles per SLM aperture (kx along columns, ky along rows)",
    }
    residuals = {"input_rms_px": rms_in, "fourier_rms_px": rms_f, "rms_px": max(rms_in, rms_f)}
    arrays = {
        "input_spot_pixels": centres_arr, "input_spot_camera": in_pos, "input_spot_used": in_ok,
        "fourier_k": kk, "fourier_spot_camera": f_pos, "fourier_spot_used": f_ok,
    }
    return RegistrationResult(params, residuals, arrays)


@dataclass
class Registration:
    """Affine maps to camera pixels (x = col, y = row)."""

    input_to_camera: np.ndarray  # 2x3: input-modulator px (col, row) → camera px (col, row)
    fourier_to_camera: np.ndarray  # 2x3: (kx, ky) cycles per SLM aperture → camera px of the first-order spot
    rms_px: float
    record_id: str = ""

    @classmethod
    def from_record(cls, record: CalibrationRecord) -> Registration:
        if record.kind != "registration":
            raise CalibrationRecordError(f"record {record.id} is a {record.kind!r} record, not a registration")
        try:
            return cls(
                input_to_camera=np.asarray(record.params["input_to_camera"], np.float64),
                fourier_to_camera=np.asarray(record.params["fourier_to_camera"], np.float64),
                rms_px=float(record.residuals["rms_px"]),
                record_id=record.id,
            )
        except KeyError as exc:
            raise CalibrationRecordError(f"registration record {record.id} lacks {exc}") from None

    def input_points_to_camera(self, points_xy: np.ndarray) -> np.ndarray:
        return apply_affine(self.input_to_camera, points_xy)

    def fourier_points_to_camera(self, k_xy: np.ndarray) -> np.ndarray:
        """Camera px (col, row) of the first-order spot of Fourier-SLM ramps of frequencies (kx, ky)."""
        return apply_affine(self.fourier_to_camera, k_xy)
