"""Registration of the SLMs to the camera: two affine maps fitted to centroided spots, and the lens
distortion of the relay in front of the camera where the spots show one.

* input modulator → camera: one small block of pixels lit at a time on a grid over the modulator
  (a hardware-triggered sequence where the bench has one); the 4f images it onto the camera.
* Fourier SLM → camera: a point source at the modulator's centre and a blazed phase ramp of spatial
  frequency k (cycles per SLM aperture) on the Fourier SLM; the first order lands at λ·f₂·k from the
  point's image (shared/REFERENCES.md). The map gives the camera pixel of that spot.

Lens distortion: a relay between the 4f output plane and the sensor bends straight lines (radially,
about the optical axis), which no affine follows. Both maps see the same relay, so one radial model
(:class:`RadialWarp`: centre, k1, k2, applied after each map's affine) is fitted to both sets of
spots at once; it is kept when it explains the spots clearly better than the affines alone
(residual RMS under :data:`WARP_GAIN` of theirs), else the record holds the affines only, as records
made before this model did (they load unchanged).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from calibration.acquisition import Acquirer
from calibration.exposure import peak_over, set_exposure_for_peak
from calibration.raw_log import Progress, RawLog, no_progress
from calibration.errors import CalibrationRecordError, SaturatedFrames, TooFewSpots
from calibration.records import CalibrationRecord
from calibration.slm_phase import point_image_peak
from calibration.spots import apply_affine, brightest, disc, fit_affine, point_source, refined_centroid

MIN_SPOTS = 6
#: the radial model is kept when its residual RMS is below this fraction of the affines'
WARP_GAIN = 0.85


@dataclass(frozen=True)
class RadialWarp:
    """Radial lens distortion on the camera: a point an affine puts at camera px ``a`` lands at
    ``c + (a − c)·(1 + k1·ρ² + k2·ρ⁴)``, ρ = |a − c| / ``radius_px`` (c: where the optical axis meets
    the sensor; radius: the sensor's half-diagonal, which keeps k1, k2 near the lens's own values)."""

    center_px: tuple[float, float]  # (col, row)
    k1: float
    k2: float
    radius_px: float

    def __call__(self, points_xy: np.ndarray) -> np.ndarray:
        p = np.asarray(points_xy, np.float64)
        d = p - np.asarray(self.center_px)
        r2 = np.sum(d**2, axis=-1, keepdims=True) / self.radius_px**2
        return np.asarray(self.center_px) + d * (1 + self.k1 * r2 + self.k2 * r2**2)

    def to_dict(self) -> dict:
        return {"model": "radial", "center_px": [float(v) for v in self.center_px], "k1": self.k1, "k2": self.k2,
                "radius_px": self.radius_px}

    @classmethod
    def from_dict(cls, d: dict) -> RadialWarp:
        if d.get("model") != "radial":
            raise CalibrationRecordError(f"unknown registration distortion model {d.get('model')!r}")
        return cls(tuple(float(v) for v in d["center_px"]), float(d["k1"]), float(d["k2"]), float(d["radius_px"]))  # type: ignore[arg-type]


def fit_radial(maps: list[tuple[np.ndarray, np.ndarray]], radius_px: float, center_px: tuple[float, float]
               ) -> tuple[list[np.ndarray], RadialWarp, list[np.ndarray]]:
    """One radial warp after one affine per map, fitted to all maps' (source, camera) points at once
    (least squares, starting from each map's affine fit and no distortion). Returns (affines, warp,
    residual vectors per map)."""
    starts = [fit_affine(src, dst)[0] for src, dst in maps]
    scale = float(radius_px)

    def unpack(p: np.ndarray) -> tuple[list[np.ndarray], RadialWarp]:
        affines = [p[6 * i : 6 * i + 6].reshape(2, 3) for i in range(len(maps))]
        c = p[6 * len(maps) :]
        return affines, RadialWarp((float(c[0] * scale), float(c[1] * scale)), float(c[2]), float(c[3]), radius_px)

    def residual(p: np.ndarray) -> np.ndarray:
        affines, warp = unpack(p)
        return np.concatenate([(warp(apply_affine(a, src)) - dst).ravel() for a, (src, dst) in zip(affines, maps)])

    p0 = np.concatenate([a.ravel() for a in starts] + [[center_px[0] / scale, center_px[1] / scale, 0.0, 0.0]])
    sol = optimize.least_squares(residual, p0, x_scale="jac")
    affines, warp = unpack(sol.x)
    resid = [dst - warp(apply_affine(a, src)) for a, (src, dst) in zip(affines, maps)]
    return affines, warp, resid


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

    rms = lambda d: float(np.sqrt(np.mean(np.sum(d**2, axis=1))))  # noqa: E731
    affine_rms = rms(np.concatenate([in_resid, f_resid]))
    warp: RadialWarp | None = None
    if in_ok.sum() + f_ok.sum() >= 2 * MIN_SPOTS + 4:
        half_diagonal = 0.5 * float(np.hypot(cam.grid.rows, cam.grid.cols))
        centre = ((cam.grid.cols - 1) / 2, (cam.grid.rows - 1) / 2)
        (w_in, w_f), w, (r_in, r_f) = fit_radial([(centres_arr[in_ok], in_pos[in_ok]), (kk[f_ok], f_pos[f_ok])],
                                                 half_diagonal, centre)
        if rms(np.concatenate([r_in, r_f])) < WARP_GAIN * affine_rms:
            in_affine, f_affine, in_resid, f_resid, warp = w_in, w_f, r_in, r_f, w
    rms_in, rms_f = rms(in_resid), rms(f_resid)
    params = {
        "input_to_camera": in_affine.tolist(),
        "fourier_to_camera": f_affine.tolist(),
        "distortion": warp.to_dict() if warp is not None else None,
        "model": "affine + radial distortion (k1, k2)" if warp is not None else "affine",
        "input_spots_used": int(in_ok.sum()),
        "fourier_spots_used": int(f_ok.sum()),
        "input_block_px": b,
        "fourier_frequency_unit": "cycles per SLM aperture (kx along columns, ky along rows)",
    }
    residuals = {"input_rms_px": rms_in, "fourier_rms_px": rms_f, "rms_px": max(rms_in, rms_f), "affine_only_rms_px": affine_rms}
    arrays = {
        "input_spot_pixels": centres_arr, "input_spot_camera": in_pos, "input_spot_used": in_ok,
        "fourier_k": kk, "fourier_spot_camera": f_pos, "fourier_spot_used": f_ok,
    }
    return RegistrationResult(params, residuals, arrays)


@dataclass
class Registration:
    """Maps to camera pixels (x = col, y = row): an affine per map, then the lens distortion if measured."""

    input_to_camera: np.ndarray  # 2x3: input-modulator px (col, row) → camera px (col, row), before distortion
    fourier_to_camera: np.ndarray  # 2x3: (kx, ky) cycles per SLM aperture → camera px of the first-order spot, before distortion
    rms_px: float
    record_id: str = ""
    distortion: RadialWarp | None = None  # None: affine only (also every record made before the model)

    @classmethod
    def from_record(cls, record: CalibrationRecord) -> Registration:
        if record.kind != "registration":
            raise CalibrationRecordError(f"record {record.id} is a {record.kind!r} record, not a registration")
        try:
            warp = record.params.get("distortion")
            return cls(
                input_to_camera=np.asarray(record.params["input_to_camera"], np.float64),
                fourier_to_camera=np.asarray(record.params["fourier_to_camera"], np.float64),
                rms_px=float(record.residuals["rms_px"]),
                record_id=record.id,
                distortion=RadialWarp.from_dict(warp) if warp else None,
            )
        except KeyError as exc:
            raise CalibrationRecordError(f"registration record {record.id} lacks {exc}") from None

    def warp(self, camera_xy: np.ndarray) -> np.ndarray:
        """Where the camera sees points that the affines put at ``camera_xy`` (the lens distortion)."""
        return self.distortion(camera_xy) if self.distortion is not None else np.asarray(camera_xy, np.float64)

    def input_points_to_camera(self, points_xy: np.ndarray) -> np.ndarray:
        return self.warp(apply_affine(self.input_to_camera, points_xy))

    def fourier_points_to_camera(self, k_xy: np.ndarray) -> np.ndarray:
        """Camera px (col, row) of the first-order spot of Fourier-SLM ramps of frequencies (kx, ky)."""
        return self.warp(apply_affine(self.fourier_to_camera, k_xy))
