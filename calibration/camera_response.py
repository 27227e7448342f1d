"""Camera response the EMVA 1288 way, measured on the bench's own light.

Light: the input modulator fully on and the Fourier SLM flat, so the camera sees the image of the
lit modulator (smooth, not perfectly uniform; the beam is Gaussian). The photon-transfer relation
σ²_y − σ²_y.dark = K·(μ_y − μ_y.dark) holds pixel by pixel, so averaging it over a set of pixels of
different brightness keeps it exact; temporal variances come from the difference of two frames.
Dark frames are taken with the shutter closed (shared/REFERENCES.md, EMVA 1288 notes).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from calibration.acquisition import Acquirer
from calibration.exposure import set_exposure_for_peak
from calibration.raw_log import Progress, RawLog, no_progress
from calibration.errors import CalibrationMismatch, CalibrationRecordError, EmptyFrames, SaturatedFrames
from calibration.records import CalibrationRecord

#: quantisation noise of an ideal ADC, DN² (EMVA 1288)
QUANTISATION_VAR = 1.0 / 12.0


@dataclass(frozen=True)
class CameraSweepSettings:
    exposures: int = 18  # exposure steps of the photon-transfer sweep
    flat_frames: int = 8  # frames averaged for the flat field and its dark
    hot_exposure_s: float = 0.1  # long dark exposure that shows hot pixels
    min_pixels: int = 400  # fewest pixels the photon-transfer set may have


@dataclass
class CameraResponse:
    params: dict
    residuals: dict
    arrays: dict


def _pair(acq: Acquirer) -> tuple[np.ndarray, np.ndarray]:
    a, b = acq.frames(2, "photon-transfer pair").astype(np.float64)
    return a, b


def _dark_pair(acq: Acquirer) -> tuple[np.ndarray, np.ndarray]:
    d = acq.dark_frames(2).astype(np.float64)
    return d[0], d[1]


def measure_camera_response(acq: Acquirer, log: RawLog, settings: CameraSweepSettings = CameraSweepSettings(),
                            progress: Progress = no_progress) -> CameraResponse:
    bench = acq.bench
    cam = bench.camera
    full = cam.max_level
    gain = None
    if cam.gain_limits is not None:
        lo, hi = cam.gain_limits
        gain = float(min(max(1.0, lo), hi))
        cam.gain = gain
    acq.set_mask(np.zeros(bench.fourier_slm.grid.shape, np.uint16))
    acq.set_input(np.ones(bench.input_slm.grid.shape))
    lo_t, hi_t = cam.exposure_limits_s

    # -- hot pixels and dark level -----------------------------------------------------------------
    progress("dark frames", 0.0)
    cam.exposure_s = float(np.clip(settings.hot_exposure_s, lo_t, hi_t))
    long_dark = acq.dark_frames(4).astype(np.float64).mean(axis=0)
    log.add("long_dark", long_dark)
    med = float(np.median(long_dark))
    mad = float(np.median(np.abs(long_dark - med))) * 1.4826
    hot = long_dark > med + max(8 * mad, 5.0)
    if long_dark.max() >= full - 0.5 and hot.mean() > 0.05:
        raise SaturatedFrames(f"{cam.name}: dark frames at {cam.exposure_s * 1e3:g} ms are saturated; is the sensor covered?")

    # -- exposure that brings the illuminated area to half scale --------------------------------------
    cam.exposure_s = float(np.clip(1e-3, lo_t, hi_t))
    dark_now = float(np.median(long_dark[~hot]))

    def bright() -> tuple[float, float]:
        frame = acq.frames(1, "exposure frame")[0]
        return float(np.percentile(frame[~hot], 99.5)), dark_now

    progress("finding the exposure", 0.05)
    t_half = set_exposure_for_peak(cam, bright, target_fraction=0.5)
    probe = acq.frames(2, "probe frame").mean(axis=0) - dark_now
    top = float(np.percentile(probe[~hot], 99.5))
    roi = (probe >= 0.7 * top) & ~hot
    if roi.sum() < settings.min_pixels:
        raise EmptyFrames(
            f"{cam.name}: only {int(roi.sum())} evenly lit pixels (need {settings.min_pixels}); "
            "widen the beam or centre it on the camera"
        )
    log.add("roi", roi)

    # -- photon-transfer sweep --------------------------------------------------------------------------
    exposures = np.clip(t_half * np.geomspace(0.02, 2.6, settings.exposures), lo_t, hi_t)
    exposures = np.unique(exposures)
    mu, var, mu_d, var_d, clipped = [], [], [], [], []
    for k, t in enumerate(exposures):
        progress(f"photon transfer {k + 1}/{len(exposures)} (exposure {t * 1e3:.3g} ms)", 0.1 + 0.7 * k / len(exposures))
        cam.exposure_s = float(t)
        a, b = _pair(acq)
        da, db = _dark_pair(acq)
        mu.append(0.5 * (a[roi].mean() + b[roi].mean()))
        var.append(0.5 * np.var(a[roi] - b[roi]))
        mu_d.append(0.5 * (da[~hot].mean() + db[~hot].mean()))
        var_d.append(0.5 * np.var(da[~hot] - db[~hot]))
        clipped.append(float(np.mean((a[roi] >= full) | (b[roi] >= full))))
    mu, var, mu_d, var_d, clipped = map(np.asarray, (mu, var, mu_d, var_d, clipped))
    for key, value in dict(exposures_s=exposures, mean_dn=mu, var_dn2=var, dark_mean_dn=mu_d, dark_var_dn2=var_d,
                           clipped_fraction=clipped).items():
        log.add(key, value)

    signal = mu - mu_d
    noise = var - var_d
    if signal.max() < 0.3 * (full - dark_now):
        raise EmptyFrames(f"{cam.name}: the light never reached 30 % of full scale, even at {exposures[-1] * 1e3:g} ms; check the laser")
    i_sat = int(np.argmax(var))
    if i_sat == len(var) - 1 and clipped[-1] < 0.5:
        raise SaturatedFrames(
            f"{cam.name}: the photon-transfer sweep did not reach saturation (longest exposure {exposures[-1] * 1e3:g} ms); "
            "raise the light level or the exposure limit"
        )
    mu_sat = float(mu[i_sat])
    usable = (signal > 0) & (signal <= 0.7 * (mu_sat - mu_d[i_sat])) & (clipped == 0) & (np.arange(len(mu)) < i_sat)
    if usable.sum() < 4:
        raise SaturatedFrames(f"{cam.name}: fewer than 4 unsaturated photon-transfer points; lower the light level")
    # K: slope through the origin of (σ²_y − σ²_dark) against (μ_y − μ_dark)
    x, y = signal[usable], noise[usable]
    gain_k = float((x @ y) / (x @ x))
    ptc_resid = y - gain_k * x
    # dark level and dark current from the dark means against exposure
    slope_d, offset = np.polyfit(exposures, mu_d, 1)
    read_var = max(float(var_d[0]) - QUANTISATION_VAR, 0.0)
    read_noise_e = float(np.sqrt(read_var) / gain_k)
    # linearity over 5–95 % of the saturation signal: relative deviation from a line through the origin
    sat_signal = mu_sat - float(mu_d[i_sat])
    lin = (signal >= 0.05 * sat_signal) & (signal <= 0.95 * sat_signal) & (np.arange(len(mu)) < i_sat)
    linearity_error = float("nan")
    if lin.sum() >= 3:
        resp = float((exposures[lin] @ signal[lin]) / (exposures[lin] @ exposures[lin]))
        dev = (signal[lin] - resp * exposures[lin]) / (resp * exposures[lin])
        linearity_error = float((dev.max() - dev.min()) / 2)

    # -- flat field and dark map at the half-scale exposure -----------------------------------------------
    progress("flat field", 0.85)
    cam.exposure_s = float(t_half)
    flat_raw = acq.frames(settings.flat_frames, "flat-field frame").mean(axis=0)
    dark_map = acq.dark_frames(settings.flat_frames).astype(np.float64).mean(axis=0)
    flat = flat_raw - dark_map
    log.add("flat_raw", flat_raw)
    log.add("dark_map", dark_map)
    lit = flat > 0.2 * np.percentile(flat[~hot], 99.5)
    lit &= ~hot
    # PRNU: the flat over its own smooth version (the smooth part is the illumination, not the sensor)
    weights = ndimage.gaussian_filter(lit.astype(np.float64), 4.0)
    smooth = ndimage.gaussian_filter(np.where(lit, flat, 0.0), 4.0) / np.maximum(weights, 1e-9)
    interior = ndimage.binary_erosion(lit, iterations=4)
    prnu = np.where(interior, flat / np.maximum(smooth, 1e-9), 1.0)
    prnu_rms = float(np.std(prnu[interior])) if interior.any() else float("nan")
    params = {
        "gain_setting": gain,
        "gain_dn_per_e": gain_k,
        "read_noise_e": read_noise_e,
        "dark_offset_dn": float(offset),
        "dark_current_e_per_s": float(slope_d / gain_k),
        "saturation_dn": mu_sat,
        "saturation_exposure_s": float(exposures[i_sat]),
        "flat_exposure_s": float(t_half),
        "hot_pixels": int(hot.sum()),
        "ptc_points": int(usable.sum()),
        "roi_pixels": int(roi.sum()),
        "dark_source": "shutter" if bench.shutter is not None else "input modulator off (no shutter)",
    }
    residuals = {
        "ptc_fit_rms_dn2": float(np.sqrt(np.mean(ptc_resid**2))),
        "ptc_fit_rms_rel": float(np.sqrt(np.mean((ptc_resid / y) ** 2))),
        "linearity_error": linearity_error,
        "prnu_rms": prnu_rms,
    }
    arrays = {
        "dark_map": dark_map.astype(np.float32),
        "prnu": prnu.astype(np.float32),
        "hot_pixels": hot,
        "ptc_mean_dn": mu,
        "ptc_var_dn2": var,
        "ptc_dark_mean_dn": mu_d,
        "ptc_dark_var_dn2": var_d,
        "ptc_exposures_s": exposures,
        "ptc_used": usable,
    }
    return CameraResponse(params, residuals, arrays)


@dataclass
class CameraCorrection:
    """Turns raw frames (DN) into corrected ones: dark subtracted, PRNU divided, hot pixels filled."""

    dark_map: np.ndarray
    prnu: np.ndarray
    hot_pixels: np.ndarray
    gain_dn_per_e: float
    read_noise_e: float
    dark_offset_dn: float
    saturation_dn: float
    record_id: str = ""

    @classmethod
    def from_record(cls, record: CalibrationRecord) -> CameraCorrection:
        if record.kind != "camera":
            raise CalibrationRecordError(f"record {record.id} is a {record.kind!r} record, not a camera calibration")
        try:
            p, a = record.params, record.arrays
            return cls(
                dark_map=np.asarray(a["dark_map"], np.float32),
                prnu=np.asarray(a["prnu"], np.float32),
                hot_pixels=np.asarray(a["hot_pixels"], bool),
                gain_dn_per_e=float(p["gain_dn_per_e"]),
                read_noise_e=float(p["read_noise_e"]),
                dark_offset_dn=float(p["dark_offset_dn"]),
                saturation_dn=float(p["saturation_dn"]),
                record_id=record.id,
            )
        except KeyError as exc:
            raise CalibrationRecordError(f"camera record {record.id} lacks {exc}") from None

    def apply(self, frames: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """(B, H, W) or (H, W) raw DN → float32 corrected frames, of the same array type."""
        is_torch = isinstance(frames, torch.Tensor)
        data = frames.detach().cpu().numpy() if is_torch else np.asarray(frames)
        if data.shape[-2:] != self.dark_map.shape:
            raise CalibrationMismatch(
                f"camera correction {self.record_id}: frames of shape {data.shape[-2:]} do not match the "
                f"calibrated sensor {self.dark_map.shape}"
            )
        out = (data.astype(np.float32) - self.dark_map) / self.prnu
        if self.hot_pixels.any():
            stack = out.reshape(-1, *out.shape[-2:])
            for frame in stack:
                filled = np.where(self.hot_pixels, np.nan, frame)
                frame[self.hot_pixels] = _neighbour_median(filled, self.hot_pixels)
            out = stack.reshape(out.shape)
        return torch.from_numpy(out) if is_torch else out


def _neighbour_median(frame_with_nans: np.ndarray, hot: np.ndarray) -> np.ndarray:
    """Median of the non-hot 3×3 neighbours of each hot pixel."""
    rows, cols = np.nonzero(hot)
    padded = np.pad(frame_with_nans, 1, mode="edge")
    neigh = np.stack([padded[rows + dr, cols + dc] for dr in range(3) for dc in range(3) if (dr, dc) != (1, 1)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a pixel whose neighbours are all hot: filled with 0
        med = np.nanmedian(neigh, axis=0)
    return np.nan_to_num(med, nan=0.0)
