"""SLM gray level → phase, measured by split-screen interferometry in the Fourier plane.

The input modulator shows a cosine amplitude grating with a bias, a = ½ + ½·cos(2π f x + ψ), so the
Fourier SLM is lit by three spots: the zero order at the centre and the ±1 orders at ±k SLM pixels.
The SLM is held at the reference gray level (0) everywhere except the half-plane beyond k/2 on one
side, which shows gray g. On the camera (output plane) the two first orders interfere into fringes
of twice the grating frequency whose phase is s·(φ₊ − φ₋) + 2sψ, s = ±1 the (unknown) orientation of
the camera. Demodulating each frame at the fringe frequency gives a complex number z(g); the pixel
gaps' unmodulated light (fill factor) and any other gray-independent light at that frequency make
z(g) = A·e^{isφ(g)} + B, a circle, so the phase is taken about the fitted circle's centre. Shifting
the input grating by ψ = π/4 fixes s (the fringes turn by 2sψ), so no φ ↔ 2π−φ fold arises and the
sign needs no monotone assumption; it assumes only that the Fourier SLM's columns run the same way
as the input modulator's (the 4f model of the bench file).

The sweep is done twice, with the gray half-plane on the +k and on the −k side, and the two curves
averaged (the first-order spots sit k pixels either side of the centre, so a tilt of the response
across the panel cancels). The same monotone spline and lookup-table code as the diffraction method
(:mod:`calibration.slm_phase`) turns the curve into one global table.

Binary input grating (default, ``binary_input``). On the lab bench (mock_hw/lab_bench.toml) the input
modulator is a DMD: binary mirrors, gray by PWM over the exposure, and a ~1 ms exposure spans a
non-whole number of PWM periods, so each frame integrates a different mix of the cosine's bit planes
(whose spectra differ). The fringe amplitude then wandered slowly from frame to frame (the PWM phase
beats with the frame cadence): radial scatter about the circle 7–11 % (0.1 % with an ideal
modulator), visibility 0.07, phase RMS 0.069 rad on seed 1 (0.026 with the same bench's input made
ideal; flicker, fringing, camera nonlinearity + stray light, aberrations and surface bow each
switched off left it at 0.066–0.079). The input grating is therefore binary, levels 0 and full only
(every bit plane the same pattern, so PWM timing cannot change it), on for a quarter of each period
(a 50 % square wave's image has no 2f fringes at a flat panel: the (±1, ±3) pairs cancel the
(−1, +1) pair's, and the frequency and sign could not be found). A binary grating also has a zero
and a second order, and the pair (0, ±2k) adds fringes of the same frequency: each side then
measures a mean of φ at ±k and ±2k, weighted by |c₁|² and |c₀c₂| (:func:`order_weights`), which the
tilt's lever arm takes into account (uncorrected it read the tilt 1.44× too large and a table region
fell below 2π). The exposure is set on the brightest of the flat panel and three split screens.
Measured (SLM phase alone on the benchmark's seeded benches, 1 torch thread): lab bench seeds 1–3
0.028 / 0.057 / 0.043 rad (cosine grating: 0.069 on seed 1; in the benchmark, run after the other
calibrations, 0.073 and 18 CPU-s); default bench seeds 1–5 0.026 / 0.056 / 0.040 / 0.057 / 0.013
(cosine 0.027 / 0.060 / 0.042 / 0.060 / 0.014); 12–13 CPU-s on the lab bench, 4 on the default one.

Known limit: the regional model is the centre curve and a linear tilt (two spot positions per axis);
a quadratic variation of the response across the panel is not measured. On seed 2 of both benches
(panel curvature −0.018) and seed 4 (+0.021) that leaves 0.056–0.057 rad, above the 0.05 target; the diffraction
method, which measures 4×4 regions, is the one to use for tables (``labctl calibrate`` default).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from calibration.acquisition import Acquirer
from calibration.exposure import check_frames, peak_over, set_exposure_for_peak
from calibration.raw_log import Progress, RawLog, no_progress
from calibration.errors import AmbiguousMeasurement, LowFringeContrast
from calibration.slm_phase import MonotoneCurve, PhaseCalibration, check_range, lut_error, lut_from_curve, region_centres
from drivers.bench import Bench
from drivers.phase_table import PhaseTable

TWO_PI = 2.0 * np.pi
SIGN_SHIFT_RAD = np.pi / 4  # input-grating phase step that turns the fringes by ±π/2
BINARY_DUTY = 0.25  # on-fraction of the binary input grating


@dataclass(frozen=True)
class InterferometricSettings:
    levels: int = 64  # gray levels sampled per sweep
    knots: int = 10  # spline intervals of the monotone response model
    table_samples: int = 1024  # phase samples of the lookup table over [0, 2π)
    min_contrast: float = 0.05  # fringe visibility below which the measurement is refused
    min_fringe_period_px: float = 5.0  # camera pixels per fringe (sampling margin for pose and scale)
    table_regions: int = 16  # N×N regions of the lookup table (the measured tilt of the response applied)
    binary_input: bool = True  # input grating of levels 0 and full only (False: the cosine; drifts on a PWM/DMD modulator)


def spot_offset_px(bench: Bench, min_fringe_period_px: float) -> int:
    """SLM-pixel offset k of the ±1 orders: as far out as the camera resolves the 2k fringes and the
    input modulator draws the grating (≥ 4 pixels a period), and at least 8 so the split edge at k/2
    stays clear of both the zero order and the +1 order (fringing fields are ~1 pixel wide)."""
    o, slm, inp, cam = bench.spec.optics, bench.fourier_slm.grid, bench.input_slm.grid, bench.camera.grid
    by_camera = o.wavelength_m * o.f2_m / (2 * min_fringe_period_px * slm.pitch_m * cam.pitch_m)
    by_input = o.wavelength_m * o.f1_m / (4 * slm.pitch_m * inp.pitch_m)
    k = int(min(by_camera, by_input, slm.cols // 4))
    if k < 8:
        raise AmbiguousMeasurement(
            f"{bench.fourier_slm.name}: the first orders of an input grating the camera can resolve fall only {k} SLM "
            "pixels from the zero order (need 8); use the diffraction method on this bench"
        )
    return k


def input_grating(bench: Bench, k: int, axis: int, shift_rad: float = 0.0, binary: bool = False) -> np.ndarray:
    """Input amplitude ½ + ½·cos(2π f u + shift) along ``axis`` (1: columns, 0: rows), f putting the ±1
    orders at ±k SLM pixels; ``binary``: levels 0 and 1 only, on for ``BINARY_DUTY`` of each period
    about the cosine's crests (every bit plane of a PWM modulator the same pattern)."""
    o, slm, inp = bench.spec.optics, bench.fourier_slm.grid, bench.input_slm.grid
    freq_per_m = k * slm.pitch_m / (o.wavelength_m * o.f1_m)
    n = inp.shape[axis]
    u = (np.arange(n) - (n - 1) / 2) * inp.pitch_m
    line = 0.5 + 0.5 * np.cos(TWO_PI * freq_per_m * u + shift_rad)
    if binary:  # on for a quarter of each period (a 50 % square wave's image has no 2f fringes to demodulate)
        line = (np.cos(TWO_PI * freq_per_m * u + shift_rad) >= np.cos(np.pi * BINARY_DUTY)).astype(np.float64)
    return np.broadcast_to(line if axis == 1 else line[:, None], inp.shape).copy()


def fundamental_shift(bench: Bench, k: int, axis: int, shift_rad: float, binary: bool) -> float:
    """How far (rad) the input grating's fundamental moves when the grating is shifted by ``shift_rad``:
    ``shift_rad`` for the cosine; less or more for the binary one, whose edges snap to modulator pixels."""
    o, slm, inp = bench.spec.optics, bench.fourier_slm.grid, bench.input_slm.grid
    freq = k * slm.pitch_m / (o.wavelength_m * o.f1_m) * inp.pitch_m  # cycles per modulator pixel
    n = inp.shape[axis]
    carrier = np.exp(-2j * np.pi * freq * np.arange(n))

    def line(shift: float) -> np.ndarray:
        g = input_grating(bench, k, axis, shift, binary)
        return g[0] if axis == 1 else g[:, 0]

    return float(abs(np.angle(np.dot(line(shift_rad), carrier) / np.dot(line(0.0), carrier))))


def order_weights(bench: Bench, k: int, axis: int, binary: bool) -> tuple[float, float]:
    """Fringe amplitudes at 2f of the pairs (−1, +1) and (0, +2) of the input grating's orders,
    |c₁|² and |c₀·c₂| (c_m: the modulator line's Fourier coefficient at m·f times its pixel's sinc)."""
    o, slm, inp = bench.spec.optics, bench.fourier_slm.grid, bench.input_slm.grid
    freq = k * slm.pitch_m / (o.wavelength_m * o.f1_m) * inp.pitch_m  # cycles per modulator pixel
    g = input_grating(bench, k, axis, 0.0, binary)
    line = g[0] if axis == 1 else g[:, 0]
    u = np.arange(line.size)
    window = np.hanning(line.size)  # a finite line of a non-whole number of periods: no leakage of c₀ into c₂
    c = [np.sum(window * line * np.exp(-2j * np.pi * m * freq * u)) / window.sum() * np.sinc(m * freq) for m in range(3)]
    return float(abs(c[1]) ** 2), float(abs(c[0] * c[2]))


def split_screen(shape: tuple[int, int], k: int, gray: int, side: int, axis: int) -> np.ndarray:
    """Gray 0 everywhere except beyond k/2 from the centre on ``side`` (+1 or −1) along ``axis``, at ``gray``."""
    u = np.arange(shape[axis]) - shape[axis] // 2
    beyond = side * u >= (k + 1) // 2
    pattern = np.zeros(shape, np.uint16)
    pattern[(slice(None), beyond) if axis == 1 else (beyond, slice(None))] = gray
    return pattern


def spot_coordinate(n: int, k: int, side: int) -> float:
    """Position of the ±k spot in the [−1, 1] panel coordinates of :func:`calibration.slm_phase.region_centres`."""
    return (n // 2 + side * k + 0.5) / n * 2 - 1


def fringe_frequency(frame: np.ndarray, nominal_cycles_per_px: float, axis: int) -> np.ndarray:
    """(fy, fx) in cycles per camera pixel of the strongest fringe within ±30 % of the nominal frequency,
    on the positive half-plane of ``axis`` (4× zero-padded FFT, parabolic peak refinement)."""
    rows, cols = frame.shape
    pad = 4
    spec = np.abs(np.fft.fft2((frame - frame.mean()) * np.outer(np.hanning(rows), np.hanning(cols)), s=(pad * rows, pad * cols)))
    fy = np.fft.fftfreq(pad * rows)[:, None]
    fx = np.fft.fftfreq(pad * cols)[None, :]
    radius = np.hypot(fy, fx)
    allowed = ((fx if axis == 1 else fy) > 0) & (radius > 0.7 * nominal_cycles_per_px) & (radius < 1.3 * nominal_cycles_per_px)
    r, c = np.unravel_index(np.argmax(np.where(allowed, spec, 0)), spec.shape)

    def vertex(a: float, b: float, d: float) -> float:
        den = a - 2 * b + d
        return 0.0 if den == 0 else 0.5 * (a - d) / den

    dr = vertex(spec[r - 1, c], spec[r, c], spec[(r + 1) % spec.shape[0], c])
    dc = vertex(spec[r, c - 1], spec[r, c], spec[r, (c + 1) % spec.shape[1]])
    return np.array([fy[r, 0] + dr / (pad * rows), fx[0, c] + dc / (pad * cols)])


def demodulate(frames: np.ndarray, weight: np.ndarray, freq: np.ndarray) -> np.ndarray:
    """Complex fringe amplitude Σ w·I·e^{−2πi(fy·y + fx·x)} of each frame, normalised by Σ w."""
    rows, cols = frames.shape[-2:]
    carrier = np.exp(-2j * np.pi * (freq[0] * np.arange(rows)[:, None] + freq[1] * np.arange(cols)[None, :]))
    return np.tensordot(frames, weight * carrier, axes=([-2, -1], [0, 1])) / weight.sum()


def fit_circle(z: np.ndarray) -> tuple[complex, float, float]:
    """Algebraic (Kåsa) circle through complex points: (centre, radius, RMS radial residual / radius)."""
    a = np.stack([2 * z.real, 2 * z.imag, np.ones(z.size)], axis=1)
    (cx, cy, c), *_ = np.linalg.lstsq(a, np.abs(z) ** 2, rcond=None)
    centre = complex(cx, cy)
    radius = float(np.sqrt(max(c + abs(centre) ** 2, 0.0)))
    resid = np.abs(np.abs(z - centre) - radius)
    return centre, radius, float(np.sqrt(np.mean(resid**2)) / max(radius, 1e-30))


@dataclass
class FringeSweep:
    phase: np.ndarray  # unwrapped s·(φ(g) − φ(0)), radians
    z: np.ndarray  # demodulated fringe amplitude per gray level
    contrast: float  # smallest fringe visibility over the sweep
    circle_residual: float


def sweep_phase(z: np.ndarray, mean_level: np.ndarray, where: str, min_contrast: float) -> FringeSweep:
    """Phase of each demodulated frame about the fitted circle's centre, unwrapped along the sweep."""
    contrast = float(np.min(2 * np.abs(z) / np.maximum(mean_level, 1e-30)))
    centre, radius, resid = fit_circle(z)
    visibility = 2 * radius / float(np.mean(mean_level))
    if visibility < min_contrast or contrast < min_contrast / 2:
        raise LowFringeContrast(
            f"{where}: fringe visibility {min(visibility, contrast):.3f} is below {min_contrast:.3f}; the first orders "
            "of the input grating do not interfere on the camera (check the camera focus, that the input modulator "
            "shows the grating, and stray light), or use the diffraction method"
        )
    if resid > 0.25:
        raise AmbiguousMeasurement(
            f"{where}: the fringe phase does not follow one circle (radial residual {resid:.1%}); "
            "check for vibration, a drifting laser or flicker and repeat"
        )
    phase = np.unwrap(np.angle((z - centre) / (z[0] - centre)))
    return FringeSweep(phase, z, contrast, resid)


@dataclass
class AxisSweep:
    """Phase at the +k and −k spots along one axis, split into a centre curve and a linear tilt."""

    centre: np.ndarray  # φ at the panel centre for each sampled gray level
    tilt: float  # relative phase change per unit panel coordinate along the axis
    sides: np.ndarray  # (2, levels): φ measured at the +k and −k spots
    fringe_period_px: float
    orientation: int
    sweeps: list[FringeSweep]


def sweep_axis(acq: Acquirer, log: RawLog, k: int, axis: int, grays: np.ndarray, settings: InterferometricSettings,
               progress: Progress, done: float) -> AxisSweep:
    """Exposure, fringe frequency, orientation and the two split-screen sweeps along ``axis``."""
    bench = acq.bench
    slm, cam, inp = bench.fourier_slm, bench.camera, bench.input_slm
    shape = slm.grid.shape
    o = bench.spec.optics
    name = "columns" if axis == 1 else "rows"
    binary = settings.binary_input
    period_px = o.wavelength_m * o.f2_m / (2 * k * slm.grid.pitch_m * cam.grid.pitch_m)
    reference = np.zeros(shape, np.uint16)

    def frame_pair() -> tuple[np.ndarray, np.ndarray]:
        acq.set_input(np.zeros(inp.grid.shape))
        off = acq.capture_masks([reference])[0]
        acq.set_input(input_grating(bench, k, axis, binary=binary))
        return acq.capture_masks([reference])[0], off

    top = slm.levels - 1

    def brightest_split() -> tuple[float, float]:
        """Peak over the flat panel and a few split screens: where the first orders' fringes add to the
        other pairs' (binary input) the frames are brighter than the flat panel's."""
        on, off = frame_pair()
        splits = acq.capture_masks((split_screen(shape, k, g, +1, axis) for g in (top // 4, top // 2, 3 * top // 4)),
                                   what="exposure split screen")
        return peak_over(np.maximum(on, splits.max(axis=0)), off)

    progress(f"exposure for the fringes of a split along the {name} (spots at ±{k} px)", done)
    set_exposure_for_peak(cam, brightest_split if binary else (lambda: peak_over(*frame_pair())), 0.6)
    on, dark = frame_pair()
    light = on - dark
    log.add(f"interferometric_{name}_dark_frame", dark)
    log.add(f"interferometric_{name}_exposure_s", cam.exposure_s)
    check_frames(bench, np.array([on.max()]), float(np.median(dark)), 1.0, "the image of the input grating")
    freq = fringe_frequency(light, 1.0 / period_px, axis)
    envelope = ndimage.gaussian_filter(light.astype(np.float64), 2 * period_px)
    weight = np.clip(envelope / envelope.max() - 0.2, 0, None)
    log.add(f"interferometric_{name}_fringe_frequency", freq)

    # orientation: shifting the input grating by ψ turns the fringes by 2sψ
    acq.set_input(input_grating(bench, k, axis, SIGN_SHIFT_RAD, binary=binary))
    shifted = acq.capture_masks([reference])[0] - dark
    acq.set_input(input_grating(bench, k, axis, binary=binary))
    turn = float(np.angle(demodulate(shifted, weight, freq) / demodulate(light, weight, freq)))
    log.add(f"interferometric_{name}_sign_turn_rad", turn)
    expected = 2 * fundamental_shift(bench, k, axis, SIGN_SHIFT_RAD, binary)
    if abs(abs(turn) - expected) > 0.5:
        raise LowFringeContrast(
            f"{cam.name}: shifting the input grating by {SIGN_SHIFT_RAD:.2f} rad turned the fringes by {turn:.2f} rad "
            f"(expected ±{expected:.2f}); the camera does not see the first orders' fringes: check the "
            "camera focus and stray light, or use the diffraction method"
        )
    s = 1 if turn > 0 else -1

    curves, sweeps = [], []
    for side in (+1, -1):
        label = f"{name}_{'plus' if side > 0 else 'minus'}"
        progress(f"split-screen sweep along the {name}, {'+' if side > 0 else '−'} side ({len(grays)} levels)", done + (0.1 if side > 0 else 0.3))
        frames = acq.capture_masks((split_screen(shape, k, int(g), side, axis) for g in grays), what="split screen")
        peaks = frames.max(axis=(1, 2))
        log.add(f"interferometric_{label}_peak", peaks)
        check_frames(bench, peaks, float(np.median(dark)), 1.0, "the split-screen fringes")
        light_frames = frames - dark
        z = demodulate(light_frames, weight, freq)
        log.add(f"interferometric_{label}_z", z)
        mean_level = np.tensordot(light_frames, weight, axes=([-2, -1], [0, 1])) / weight.sum()
        log.add(f"interferometric_{label}_mean_level", mean_level)
        sweep = sweep_phase(z, mean_level, f"{slm.name} split-screen sweep ({label})", settings.min_contrast)
        curve = s * side * sweep.phase  # the −k side enters the fringes as −φ
        if curve[-1] <= 0:
            raise AmbiguousMeasurement(
                f"{slm.name}: the measured phase decreases with gray level ({label}); the SLM may be mounted mirrored "
                "with respect to the input modulator (flip it in the driver), or the response is not monotone"
            )
        curves.append(curve)
        sweeps.append(sweep)
    n = shape[axis]
    # A binary input grating also has a zero and a second order: the pair (0, ±2k) makes fringes of the
    # same frequency, so each side's phase is a weighted mean of φ at ±k and ±2k (cosine: ±k alone).
    w1, w2 = order_weights(bench, k, axis, binary)
    x_plus, x_minus = ((w1 * spot_coordinate(n, k, s_) + w2 * spot_coordinate(n, 2 * k, s_)) / (w1 + w2) for s_ in (+1, -1))
    slope = (curves[0] - curves[1]) / (x_plus - x_minus)  # φ_c·tilt
    centre = curves[0] - slope * x_plus
    tilt = float(np.sum(slope * centre) / max(np.sum(centre**2), 1e-30))
    return AxisSweep(centre, tilt, np.stack(curves), float(1 / np.hypot(*freq)), s, sweeps)


def measure_phase_response_interferometric(
    acq: Acquirer, log: RawLog, settings: InterferometricSettings = InterferometricSettings(),
    progress: Progress = no_progress,
) -> PhaseCalibration:
    bench = acq.bench
    slm = bench.fourier_slm
    shape, levels = slm.grid.shape, slm.levels
    top = levels - 1
    k = spot_offset_px(bench, settings.min_fringe_period_px)
    grays = np.unique(np.linspace(0, top, min(settings.levels, levels)).round().astype(int))
    log.add("interferometric_gray", grays)
    x_axis = sweep_axis(acq, log, k, 1, grays, settings, progress, 0.02)
    y_axis = sweep_axis(acq, log, k, 0, grays, settings, progress, 0.5)

    progress("fitting the monotone response", 0.95)
    measured = 0.5 * (x_axis.centre + y_axis.centre)
    t = grays / top
    model = MonotoneCurve(settings.knots)
    inc = model.initial(t, measured)
    fitted = model.evaluate(inc, t)
    phase_global = model.evaluate(inc, np.arange(levels) / top)
    check_range(float(phase_global[-1]), levels, slm.name)
    n_tab = max(1, min(settings.table_regions, shape[0] // 4, shape[1] // 4))
    y, x = region_centres(n_tab)
    scale = 1 + x_axis.tilt * x + y_axis.tilt * y
    curves = phase_global * scale[..., None]
    for i, j in zip(*np.nonzero(curves[..., -1] < TWO_PI)):
        check_range(float(curves[i, j, -1]), levels, f"{slm.name} table region {i},{j}")
    gray_lut = np.stack([[lut_from_curve(curves[i, j], settings.table_samples) for j in range(n_tab)] for i in range(n_tab)])
    table = PhaseTable(gray=gray_lut, bit_depth=slm.bit_depth)
    params = {
        "bit_depth": slm.bit_depth,
        "spot_offset_px": k,
        "fringe_period_px": [x_axis.fringe_period_px, y_axis.fringe_period_px],
        "camera_orientation_sign": [x_axis.orientation, y_axis.orientation],
        "reference_gray": 0,
        "levels_sampled": int(len(grays)),
        "response_tilt": [x_axis.tilt, y_axis.tilt],
        "regions_measured": 1,
        "input_grating": f"binary, on {BINARY_DUTY:.0%} of each period" if settings.binary_input else "cosine",
        "regional_model_limit": "centre curve and linear tilt only: a quadratic variation of the response across "
                                "the panel is not measured (use the diffraction method where it matters)",
        "table_regions": n_tab,
        "phase_at_full_scale_rad": float(phase_global[-1]),
        "model": f"monotone cubic B-spline, {settings.knots} intervals, fitted to the circle-centred fringe phase; "
                 "regions: phi_c*(1 + tilt_x*x + tilt_y*y)",
        "table_samples": settings.table_samples,
    }
    sweeps = x_axis.sweeps + y_axis.sweeps
    residuals = {
        "phase_fit_rms_rad": float(np.sqrt(np.mean((measured - fitted) ** 2))),
        "axis_centre_curves_rms_rad": float(np.sqrt(np.mean((x_axis.centre - y_axis.centre) ** 2))),
        "fringe_contrast_min": min(w.contrast for w in sweeps),
        "circle_radial_rms_rel_max": max(w.circle_residual for w in sweeps),
        "table_quantisation_rms_rad": lut_error(gray_lut, curves, settings.table_samples),
    }
    arrays = {
        "table_gray": gray_lut,
        "phase_global": phase_global,
        "phase_regions": curves,
        "region_warp": np.stack([scale, np.zeros_like(scale)], axis=-1),
        "measured_gray": grays,
        "measured_phase": measured,
        "measured_phase_spots": np.concatenate([x_axis.sides, y_axis.sides]),
    }
    return PhaseCalibration(table, np.arange(levels), phase_global, curves, params, residuals, arrays)
