"""SLM gray level → phase, measured by diffraction from binary gratings (levels 0 and g).

A point source on the input modulator lights the whole Fourier SLM; the camera (in the output
plane) then sees the far field of the SLM: the zero order at the point's image and the ±1 orders
of a grating at ±N/Λ output samples. For a 50 % duty grating of phase step φ the zero order is
∝ cos²(φ/2) and each first order ∝ (4/π²) sin²(φ/2), so tan²(φ/2) = (π²/4)·I₁/I₀
(shared/REFERENCES.md). The zero order also carries the unmodulated light of the pixel gaps
(fill factor) and, for a regional grating, all the light from outside the region; so the fit uses
the first orders alone, I₁(g) = A·sin²(φ(g)/2) + B, with φ(0) = 0 and φ monotone (which unfolds the
φ ↔ 2π−φ ambiguity). The tan² estimate of the full-panel sweep is kept as a check.

Regions, multiplexed (the default): the regions equally far from the panel centre (equally lit by
the point source's spectrum) are measured together, up to four at a time, each with its own binary
grating direction (:func:`multiplex_layout`), so each region's first orders land on their own spots;
each group's gray levels interleave with the others', each shown with its complement, at the group's
own exposure. Any non-zero spatial frequency of a two-level pattern carries (e^{iφ} − 1) times the
mask's spectrum there, so each region's spots follow A·sin²(φ/2) + B whatever its grating's direction.
The full-panel curve is fitted to the groups' summed first orders (each group on its own scale) and
each region's response as a smooth warp of it. Sequential regions (``multiplex`` off, or spots that
would not fit on the camera): the grating fills one region (a whole number of periods wide, so the
region aperture's own diffraction vanishes at the first-order spot), the rest of the panel stays at
gray 0, and a full-panel grating sweep comes first: about six times the frames.

Fringing correction (multiplexed regions). The fringing field smooths the LC phase across every
bar edge, so a grating reads a phase step shorter than a uniform pixel's: the apparent response is
φ·(1 − α·|f|²), |f| the grating's spatial frequency (the smoothing's transfer at that frequency, to
first order; α grows with gray level). The multiplexed gratings (stripes ~11 px on 64-px regions)
have more edges than the 16-px bars of the sequential sweep, and on the embedded default bench, seed 3
(Gaussian fringing of σ = 0.62 px), every region read ≈ 1.2 % short: phase RMS 0.0506 rad (0.036
sequential); with the fringing switched off in the simulator the same sweep gave 0.016. So the
corner regions (:func:`outer_regions`) are swept once more under one binary grating of a longer
period (32 px: |f|² 0.44–0.5 of the multiplexed gratings'; ``fringing_levels`` levels with
complements), their multiplexed responses are fitted as a warp of that reference's, and the ratio
gives α per gray level (:func:`_fringing_reference`); each region's curve is divided by
1 − α·|f_r|² (:func:`_undo_fringing`). Not the central regions: the input modulator's leak light is
focused at the panel centre with cross-shaped sinc sidelobes ~20× the point source's along the
central row and column; where they light bar edges they bias the apparent phase differently
(central regions 0.3–0.8 % off their fringing-only value), which made a central reference say
α ≈ 0. Measured (``benchmarks/calibration_accuracy.py`` SLM phase only, diffraction, 1 thread):
default bench seeds 1–5 0.0243/0.0272/0.0506/0.0425/0.0179 rad before, 0.0172/0.0219/0.0157/0.0214/
0.0209 after; lab bench seeds 1–3 0.015/0.020/0.022 after (0.022–0.025 before); ≈ 70 more frames.
The sequential path (``multiplex`` off) is not corrected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import interpolate, optimize, signal

from calibration.acquisition import Acquirer
from calibration.errors import AmbiguousMeasurement, TooFewSpots
from calibration.exposure import check_frames, peak_over, set_exposure_for_peak
from calibration.raw_log import Progress, RawLog, no_progress
from calibration.spots import brightest, disc, point_source, refined_centroid
from drivers.bench import Bench
from drivers.phase_table import PhaseTable

TWO_PI = 2.0 * np.pi


@dataclass(frozen=True)
class PhaseSweepSettings:
    regions: int = 4  # N×N regional tables (1: one global table)
    levels: int = 96  # gray levels sampled in the full-panel sweep
    region_levels: int = 24  # gray levels sampled per region
    table_samples: int = 1024  # phase samples of the lookup table over [0, 2π)
    knots: int = 10  # spline intervals of the monotone response model
    table_regions: int = 16  # N×N regions of the lookup table (smooth fit of the measured regions)
    multiplex: bool = True  # all regions in one sweep (own grating direction each); False: region by region
    multiplex_levels: int = 20  # gray levels per group of regions (each with its complement; groups interleave)
    fringing_levels: int = 32  # gray levels of the fringing reference (multiplexed only; 0: no fringing correction)


@dataclass
class OrderWindows:
    """Where the zero and ±1 orders of a grating fall on the camera, and the summing windows."""

    zero_xy: tuple[float, float]
    plus_xy: tuple[float, float]
    minus_xy: tuple[float, float]
    radius: float
    first: np.ndarray  # bool mask: both first-order discs
    zero: np.ndarray  # bool mask: zero-order disc


def grating(
    shape: tuple[int, int], period: int, gray: int, region: tuple[slice, slice] | None = None,
    complement: bool = False, keep_centre: int = 0,
) -> np.ndarray:
    """Binary 50 % grating along columns with levels 0 and ``gray`` (only inside ``region`` if given).

    ``complement`` swaps the two levels (the first orders change sign, the zero order does not).
    ``keep_centre``: half-width of a patch at the panel centre held at gray 0, where the input
    modulator's leak light (its image of the whole aperture) is focused; it then meets the same level
    in every pattern.
    """
    rows, cols = shape
    phase_of_bars = np.mod(np.arange(cols) - cols // 2 + period // 4, period) >= period // 2
    bars = (phase_of_bars ^ complement).astype(np.uint16) * np.uint16(gray)
    pattern = np.broadcast_to(bars, shape).copy()
    if region is not None:
        out = np.zeros(shape, np.uint16)
        out[region] = pattern[region]
        pattern = out
    if keep_centre:
        h = keep_centre
        pattern[rows // 2 - h : rows // 2 + h + 1, cols // 2 - h : cols // 2 + h + 1] = 0
    return pattern


def leak_patch_half_width(bench: Bench) -> int:
    """Half-width (SLM px) of the focus of light spread over the whole input modulator."""
    optics, slm, inp = bench.spec.optics, bench.fourier_slm.grid, bench.input_slm.grid
    window_m = optics.wavelength_m * optics.f1_m / slm.pitch_m
    aperture_m = min(inp.rows, inp.cols) * inp.pitch_m
    return int(np.ceil(2 * window_m / aperture_m))


def region_slices(shape: tuple[int, int], n: int) -> list[tuple[int, int, tuple[slice, slice]]]:
    """(i, j, slices) of an n×n split of the panel, the same rule PhaseTable.gray_for_phase uses."""
    rows, cols = shape
    out = []
    for i in range(n):
        r = np.nonzero(np.arange(rows) * n // rows == i)[0]
        for j in range(n):
            c = np.nonzero(np.arange(cols) * n // cols == j)[0]
            out.append((i, j, (slice(int(r[0]), int(r[-1]) + 1), slice(int(c[0]), int(c[-1]) + 1))))
    return out


def choose_period(cols: int, region_cols: int | None) -> int:
    """Longest even period with the first order well clear of the zero order (≥ 8 output samples,
    ≥ 2 region-spot widths) that fits a whole number of times into a region."""
    min_offset = 8 if region_cols is None else max(8, 2 * cols // region_cols)
    width = region_cols or cols
    for period in range(cols // min_offset, 3, -1):
        if period % 2 == 0 and width % period == 0 and width // period >= 2:
            return period
    for period in range(cols // min_offset, 3, -1):  # regions of awkward width: accept a partial period
        if period % 2 == 0 and width // period >= 2:
            return period
    raise AmbiguousMeasurement(f"SLM regions of {width} columns are too narrow for a diffraction grating; use fewer regions")


def point_image_peak(acq: Acquirer) -> tuple[float, float]:
    """Peak DN of the point source's image through a flat SLM, measured against a frame with the point off
    so that hot pixels (bright in both) do not pass for the spot."""
    bench = acq.bench
    shape = bench.fourier_slm.grid.shape
    flat = np.zeros(shape, np.uint16)
    on = acq.capture_masks([flat])[0]
    acq.set_input(np.zeros(bench.input_slm.grid.shape))
    off = acq.capture_masks([flat])[0]
    acq.set_input(point_source(bench))
    return peak_over(on, off)


def locate_orders(bench: Bench, flat: np.ndarray, probe: np.ndarray, period: int) -> OrderWindows:
    """Find the zero order in ``flat`` and the ±1 orders in ``probe − flat`` near their nominal positions."""
    cam, slm = bench.camera, bench.fourier_slm
    optics = bench.spec.optics
    out_dx = optics.wavelength_m * optics.f2_m / (slm.grid.cols * slm.grid.pitch_m)
    offset_px = (slm.grid.cols / period) * out_dx / cam.grid.pitch_m
    zero = brightest(flat)
    diff = np.clip(probe - flat, 0, None)
    search = max(3.0, 0.3 * offset_px)
    found = []
    for sign in (+1, -1):
        # the 4f images invert, so which camera side is +1 does not matter: both are summed
        guess = (zero[0] + sign * offset_px, zero[1])
        win = disc(diff.shape, guess, search)
        if not win.any() or diff[win].max() <= 0:
            raise TooFewSpots(
                f"{cam.name}: no first-order spot of a {period}-pixel grating near camera pixel "
                f"({guess[0]:.0f}, {guess[1]:.0f}); check the alignment and that the point source is on the axis"
            )
        masked = np.where(win, diff, 0)
        start = brightest(masked, smooth_px=1.0)
        x, y, _ = refined_centroid(diff, start, search, background=0.0)
        found.append((x, y))
    sep = np.hypot(found[0][0] - found[1][0], found[0][1] - found[1][1]) / 2
    radius = 0.45 * sep
    for x, y in found:
        if not (0 <= x < cam.grid.cols and 0 <= y < cam.grid.rows):
            raise TooFewSpots(f"{cam.name}: a first-order spot falls outside the sensor; centre the beam on the camera")
    first = disc(flat.shape, found[0], radius) | disc(flat.shape, found[1], radius)
    return OrderWindows(zero, found[0], found[1], radius, first, disc(flat.shape, zero, radius))


def _sweep(acq: Acquirer, grays: np.ndarray, period: int, region, windows: OrderWindows, keep: int) -> tuple[np.ndarray, np.ndarray, float, float]:
    """First- and zero-order window sums for each gray level, and the peak pixel of each kind of window.

    Each level is shown as a grating and as its complement, and the window sums averaged: the first
    orders change sign between the two, so their interference with gray-independent light (leak,
    zero-order wings) cancels, which would otherwise be indistinguishable from a phase offset.
    """
    shape = acq.bench.fourier_slm.grid.shape
    patterns = (grating(shape, period, int(g), region, complement=c, keep_centre=keep) for g in grays for c in (False, True))
    frames = acq.capture_masks(patterns, what="grating")
    i1 = frames[:, windows.first].sum(axis=1, dtype=np.float64).reshape(-1, 2).mean(axis=1)
    i0 = frames[:, windows.zero].sum(axis=1, dtype=np.float64).reshape(-1, 2).mean(axis=1)
    return i1, i0, float(frames[:, windows.first].max()), float(frames[:, windows.zero].max())


# -- multiplexed regions --------------------------------------------------------------------------


@dataclass
class MultiplexLayout:
    """Regions in groups of up to four shown at once, each region of a group with its own binary
    grating ``((a·x + b·y) mod period) ≥ period/2``, (a, b) = ``vectors[r]``: its first orders sit at
    ±(a·cols, b·rows)/period output samples from the zero order."""

    period: int
    vectors: list[tuple[int, int]]  # per region
    groups: list[list[int]]  # region indices shown together
    spacing: float  # output samples between neighbouring spots (at least)


#: the four directions of a group, in units of cols/period output samples: along x, along y and the
#: two diagonals. With period = cols/w (w: a region's spot half-width, output samples) the spots lie
#: 3w (axes) and 2.8w (diagonals) from the zero order and at least 2.2w from each other, and every
#: grating's stripes are about a third of a region long (21 px axes, 23 px diagonals on a 64-pixel
#: region): few pixel edges (whose fringing bends the measured response), about as many everywhere.
_GROUP_VECTORS = [(3, 0), (0, 3), (2, 2), (-2, 2)]


def multiplex_layout(shape: tuple[int, int], region_shape: tuple[int, int], n_side: int,
                     reach: tuple[float, float]) -> MultiplexLayout | None:
    """Groups of up to four regions of an ``n_side``×``n_side`` split, equally far from the panel centre,
    each region with one of the four group directions. None when the spots would not lie
    within ``reach`` (x, y) output samples of the zero order or the period would be too short."""
    rows, cols = shape
    w = max(cols / region_shape[1], rows / region_shape[0])  # spot half-width, output samples
    period = int(round(cols / w))
    if period < 8 or period % 2:
        return None
    if 3 * cols / period > reach[0] or 3 * rows / period > reach[1]:
        return None
    # groups of regions equally far from the panel centre (equally lit by the point source's spectrum,
    # so one exposure suits them all and no bright spot swamps a dim region's)
    c = (np.arange(n_side) + 0.5) / n_side * 2 - 1
    order = sorted(range(n_side * n_side), key=lambda k: (round(float(np.hypot(c[k // n_side], c[k % n_side])), 6),
                                                          float(np.arctan2(c[k // n_side], c[k % n_side]))))
    groups = [order[g : g + len(_GROUP_VECTORS)] for g in range(0, len(order), len(_GROUP_VECTORS))]
    vectors: list[tuple[int, int]] = [(0, 0)] * (n_side * n_side)
    for members in groups:
        for k, v in zip(members, _GROUP_VECTORS):
            vectors[k] = v
    return MultiplexLayout(period, vectors, groups, float(np.hypot(1, 2)) * cols / period)


def multiplexed_grating(shape: tuple[int, int], layout: MultiplexLayout, regions: list, gray: int,
                        complement: bool = False, keep_centre: int = 0, only: list[int] | None = None) -> np.ndarray:
    """The gratings of ``layout`` at levels 0 and ``gray`` in the regions ``only`` (all: None); the rest at 0."""
    rows, cols = shape
    yy, xx = np.indices(shape)
    out = np.zeros(shape, np.uint16)
    for r, ((_, _, sl), (a, b)) in enumerate(zip(regions, layout.vectors)):
        if only is not None and r not in only:
            continue
        bars = np.mod(a * (xx[sl] - cols // 2) + b * (yy[sl] - rows // 2), layout.period) >= layout.period // 2
        out[sl] = (bars ^ complement).astype(np.uint16) * np.uint16(gray)
    if keep_centre:
        h = keep_centre
        out[rows // 2 - h : rows // 2 + h + 1, cols // 2 - h : cols // 2 + h + 1] = 0
    return out


def _reach_samples(bench: Bench) -> tuple[float, float]:
    """How far (x, y) from the zero order spots may lie: 0.55 of the camera's half-size, in output samples."""
    optics, slm, cam = bench.spec.optics, bench.fourier_slm.grid, bench.camera.grid
    dx = optics.wavelength_m * optics.f2_m / (slm.cols * slm.pitch_m) / cam.pitch_m  # camera px per sample
    dy = optics.wavelength_m * optics.f2_m / (slm.rows * slm.pitch_m) / cam.pitch_m
    return 0.55 * cam.cols / 2 / dx, 0.55 * cam.rows / 2 / dy


def locate_multiplexed(acq: Acquirer, layout: MultiplexLayout, regions: list, flat: np.ndarray,
                       gray: int, keep: int) -> tuple[list[np.ndarray], float]:
    """Each region's first-order window (both spots), found in a frame of its grating alone minus
    ``flat`` near the nominal places; and the window radius."""
    bench = acq.bench
    shape = bench.fourier_slm.grid.shape
    cam, slm, optics = bench.camera, bench.fourier_slm.grid, bench.spec.optics
    px_x = optics.wavelength_m * optics.f2_m / (slm.cols * slm.pitch_m) / cam.grid.pitch_m
    px_y = optics.wavelength_m * optics.f2_m / (slm.rows * slm.pitch_m) / cam.grid.pitch_m
    zero = brightest(flat)
    w = layout.spacing / 3
    radius = max(1.5, min(1.25 * w, 0.45 * layout.spacing))
    search = max(3.0, 0.45 * layout.spacing)
    probes = acq.capture_masks((multiplexed_grating(shape, layout, regions, gray, keep_centre=keep, only=[r])
                                for r in range(len(layout.vectors))), what="region grating probe")
    windows = []
    for r, (a, b) in enumerate(layout.vectors):
        diff = np.clip(probes[r] - flat, 0, None)
        k = np.array([a * slm.cols * px_x, b * slm.rows * px_y]) / layout.period
        window = np.zeros(flat.shape, bool)
        for sign in (+1, -1):
            guess = (zero[0] + sign * k[0], zero[1] + sign * k[1])
            win = disc(diff.shape, guess, search)
            if not win.any() or diff[win].max() <= 0:
                raise TooFewSpots(
                    f"{cam.name}: no first-order spot of SLM region {r}'s grating near camera pixel "
                    f"({guess[0]:.0f}, {guess[1]:.0f}); check the alignment and that the point source is on the axis"
                )
            x, y, _ = refined_centroid(diff, brightest(np.where(win, diff, 0), smooth_px=1.0), radius, background=0.0)
            if not (0 <= x < cam.grid.cols and 0 <= y < cam.grid.rows):
                raise TooFewSpots(f"{cam.name}: a first-order spot falls outside the sensor; centre the beam on the camera")
            window |= disc(flat.shape, (x, y), radius)
        windows.append(window)
    return windows, radius


# -- fitting --------------------------------------------------------------------------------------


class MonotoneCurve:
    """φ(t), t = g/(L−1) ∈ [0, 1]: a clamped cubic B-spline with non-decreasing coefficients, φ(0) = 0."""

    def __init__(self, knots: int) -> None:
        inner = np.linspace(0, 1, knots + 1)
        self.t = np.concatenate([[0, 0, 0], inner, [1, 1, 1]])
        self.n_coef = len(self.t) - 4

    def basis(self, t: np.ndarray) -> np.ndarray:
        return interpolate.BSpline.design_matrix(np.clip(t, 0, 1), self.t, 3).toarray()

    def coefficients(self, increments: np.ndarray) -> np.ndarray:
        return np.concatenate([[0.0], np.cumsum(increments)])

    def evaluate(self, increments: np.ndarray, t: np.ndarray) -> np.ndarray:
        return self.basis(t) @ self.coefficients(increments)

    def initial(self, t: np.ndarray, phase: np.ndarray) -> np.ndarray:
        """Non-negative increments fitting ``phase`` (non-negative least squares on the cumulative basis)."""
        b = self.basis(t)
        cumulative = np.cumsum(b[:, ::-1], axis=1)[:, ::-1][:, 1:]  # φ = Σ_k d_k · Σ_{j≥k} B_j
        inc, _ = optimize.nnls(cumulative, phase)
        return inc


def unfold(intensity: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Phase estimate from I₁ ∝ sin²(φ/2) for a monotone sweep: branches switch at the extrema.

    Returns (phase, amplitude A, background B). Hysteresis of 30 % of the swing makes noise harmless.
    """
    n = len(intensity)
    win = max(5, (n // 12) | 1)
    smooth = signal.savgol_filter(intensity, min(win, n - (1 - n % 2)), 2) if n >= 7 else intensity
    lo, hi = float(np.min(smooth)), float(np.max(smooth))
    if hi - lo <= 1e-9 * max(1.0, abs(hi)):
        raise AmbiguousMeasurement("the first-order intensity does not change with gray level: the SLM shows no phase modulation")
    ratio = np.clip((intensity - lo) / (hi - lo), 0, 1)
    base = 2 * np.arcsin(np.sqrt(ratio))
    hyst = 0.3 * (hi - lo)
    branch = np.zeros(n, int)
    rising, k, ext, ext_i = True, 0, smooth[0], 0
    for i in range(n):
        v = smooth[i]
        if rising:
            if v > ext:
                ext, ext_i = v, i
            elif v < ext - hyst:
                k += 1
                branch[ext_i + 1 :] = k
                rising, ext, ext_i = False, v, i
        else:
            if v < ext:
                ext, ext_i = v, i
            elif v > ext + hyst:
                k += 1
                branch[ext_i + 1 :] = k
                rising, ext, ext_i = True, v, i
    # A last extremum the sweep only just reached (no hysteresis swing after it) still counts.
    if rising and ext_i < n - 1 and ext > lo + 0.9 * (hi - lo):
        branch[ext_i + 1 :] = k + 1
    elif not rising and ext_i < n - 1 and ext < lo + 0.1 * (hi - lo):
        branch[ext_i + 1 :] = k + 1
    phase = np.where(branch % 2 == 0, branch * np.pi + base, (branch + 1) * np.pi - base)
    return phase, hi - lo, lo


@dataclass
class CurveFit:
    phase: np.ndarray  # fitted phase at the measured gray levels
    amplitude: float
    background: float
    residual_rms: float  # of the intensity fit, relative to the amplitude
    phase_residual_rms_rad: float  # between the fit and the point-wise unfolded phase (well-conditioned points)


def first_order_model(phase: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Window sum of the first orders: A·sin²(φ/2) + B.

    No interference term with gray-independent light: A·sin²((φ+δ)/2) is exactly a mix of 1, sin²(φ/2)
    and sin φ, so such a term could not be told from a phase offset δ; the complementary gratings of
    :func:`_sweep` remove it instead.
    """
    return p[0] * np.sin(phase / 2) ** 2 + p[1]


def fit_global(t: np.ndarray, intensity: np.ndarray, knots: int) -> tuple[MonotoneCurve, np.ndarray, CurveFit]:
    """Fit I₁(t) = A·sin²(φ(t)/2) + B with φ a monotone spline; returns (model, increments, fit)."""
    phase0, amp0, bg0 = unfold(intensity)
    phase0 = np.maximum.accumulate(phase0)
    model = MonotoneCurve(knots)
    inc0 = model.initial(t, phase0)
    basis = model.basis(t)
    scale = max(amp0, 1e-12)

    def residual(p: np.ndarray) -> np.ndarray:
        phi = basis @ model.coefficients(p[2:])
        return (first_order_model(phi, p[:2]) - intensity) / scale

    p0 = np.concatenate([[amp0, bg0], inc0])
    lower = np.concatenate([[0, -np.inf], np.zeros_like(inc0)])
    sol = optimize.least_squares(residual, p0, bounds=(lower, np.inf), x_scale="jac")
    inc = sol.x[2:]
    phase = basis @ model.coefficients(inc)
    fit = CurveFit(phase, float(sol.x[0]), float(sol.x[1]), float(np.sqrt(np.mean(sol.fun**2))),
                   _phase_residual(phase, intensity, *map(float, sol.x[:2])))
    return model, inc, fit


def pointwise_phase(phase: np.ndarray, intensity: np.ndarray, amp: float, bg: float) -> np.ndarray:
    """Phase of each measurement on its own (asin of the normalised intensity) on the fitted branch."""
    base = 2 * np.arcsin(np.sqrt(np.clip((intensity - bg) / amp, 0, 1)))
    branch = np.floor(phase / np.pi)
    return np.where(branch % 2 == 0, branch * np.pi + base, (branch + 1) * np.pi - base)


def _phase_residual(phase: np.ndarray, intensity: np.ndarray, amp: float, bg: float) -> float:
    """RMS of point-wise phase minus the fit, over points away from the extrema where asin is well conditioned."""
    point = pointwise_phase(phase, intensity, amp, bg)
    folded = np.abs(np.sin(phase / 2))
    good = (folded > 0.3) & (folded < 0.95)
    return float(np.sqrt(np.mean((point - phase)[good] ** 2))) if good.any() else float("nan")


def fit_warp(phase_global: np.ndarray, intensity: np.ndarray) -> tuple[np.ndarray, CurveFit]:
    """Region response as a warp of the global curve: φ_R = φ_G·(a + b·φ_G/φ_Gmax); returns ((a, b), fit)."""
    top = max(float(phase_global[-1]), 1e-9)
    amp0 = float(np.ptp(intensity)) or 1.0
    bg0 = float(np.min(intensity))

    def phase_of(a: float, b: float) -> np.ndarray:
        return phase_global * (a + b * phase_global / top)

    def residual(p: np.ndarray) -> np.ndarray:
        return (first_order_model(phase_of(p[2], p[3]), p[:2]) - intensity) / amp0

    sol = optimize.least_squares(residual, [amp0, bg0, 1.0, 0.0], bounds=([0, -np.inf, 0.5, -0.5], [np.inf, np.inf, 1.5, 0.5]))
    a, b = sol.x[2:]
    if a + 2 * b <= 0:
        raise AmbiguousMeasurement("a region's fitted phase response is not monotone; repeat with fewer regions")
    phase = phase_of(a, b)
    fit = CurveFit(phase, float(sol.x[0]), float(sol.x[1]), float(np.sqrt(np.mean(sol.fun**2))),
                   _phase_residual(phase, intensity, *map(float, sol.x[:2])))
    return np.array([a, b]), fit


def lut_from_curve(phase_of_gray: np.ndarray, samples: int) -> np.ndarray:
    """Gray level for each target phase 2πk/K, all on one branch of the (monotone) response: the
    target is taken into [φ(0), φ(0) + 2π) and the nearest gray level there chosen (lowest on ties;
    past the response's top, the nearer of the top and gray 0, modulo 2π).

    One branch, because the liquid crystal's fringing field smooths the *voltages* of neighbouring
    pixels: where the response exceeds 2π, a table that picked, target by target, whichever of
    φ and φ + 2π lay nearer flipped between gray ~4 and ~228 for neighbouring small phases, and every
    such pair is a 2π step that fringing turns into a ramp through all phases. On one branch the
    panel's wraps are the mask's own (where it goes from 2π to 0), which is what the twin models."""
    curve = np.asarray(phase_of_gray, dtype=np.float64)
    top = len(curve) - 1
    wanted = curve[0] + np.mod(np.arange(samples) * TWO_PI / samples - curve[0], TWO_PI)
    idx = np.searchsorted(curve, wanted)
    candidates = np.stack([np.clip(idx - 1, 0, top), np.clip(idx, 0, top), np.zeros_like(idx)])
    dist = np.abs(np.angle(np.exp(1j * (curve[candidates] - wanted))))  # modulo 2π: gray 0 past the top
    dist[2] += 1e-9  # gray 0 only where it is really nearer (past the response's top)
    order = np.lexsort((candidates, dist), axis=0)[0]
    return candidates[order, np.arange(samples)].astype(np.uint16)


def region_centres(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Centres (y, x) of an n×n split of the panel in [−1, 1] coordinates, as (n, n) grids."""
    c = (np.arange(n) + 0.5) / n * 2 - 1
    return np.meshgrid(c, c, indexing="ij")


def smooth_warp(warps: np.ndarray, n_out: int) -> tuple[np.ndarray, float]:
    """Fit each warp parameter over the panel with a low-order polynomial surface (quadratic from 3×3
    regions up) and evaluate it on an n_out×n_out split: tables finer than the measurement, without
    its noise. Returns ((n_out, n_out, 2), RMS misfit of the scale parameter)."""
    n = warps.shape[0]
    y, x = region_centres(n)

    def design(yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
        cols = [np.ones_like(xx), xx, yy] + ([xx**2, xx * yy, yy**2] if n >= 3 else [])
        return np.stack([c.ravel() for c in cols], axis=1)

    coef, *_ = np.linalg.lstsq(design(y, x), warps.reshape(-1, 2), rcond=None)
    misfit = float(np.sqrt(np.mean((design(y, x) @ coef - warps.reshape(-1, 2))[:, 0] ** 2)))
    fy, fx = region_centres(n_out)
    return (design(fy, fx) @ coef).reshape(n_out, n_out, 2), misfit


def check_range(phase_max: float, levels: int, where: str) -> None:
    step = phase_max / max(levels - 1, 1)
    if phase_max < TWO_PI - 1.5 * step:
        raise AmbiguousMeasurement(
            f"{where}: the SLM reaches only {phase_max:.2f} rad at full scale, less than 2π; a full phase table "
            "is impossible at this wavelength (use a shorter wavelength or an SLM with more stroke)"
        )


# -- the calibration ------------------------------------------------------------------------------


@dataclass
class PhaseCalibration:
    table: PhaseTable
    gray: np.ndarray  # all gray levels 0..L−1
    phase_global: np.ndarray  # fitted full-panel phase for each gray level
    phase_regions: np.ndarray  # (R, R, L) fitted regional phase
    params: dict
    residuals: dict
    arrays: dict


def measure_phase_response(acq: Acquirer, log: RawLog, settings: PhaseSweepSettings = PhaseSweepSettings(),
                           progress: Progress = no_progress) -> PhaseCalibration:
    bench = acq.bench
    slm, cam = bench.fourier_slm, bench.camera
    shape = slm.grid.shape
    levels = slm.levels
    top = levels - 1
    acq.set_input(point_source(bench))
    n_reg = max(1, min(settings.regions, shape[0] // 8, shape[1] // 8))
    regions = region_slices(shape, n_reg) if n_reg > 1 else []

    # -- full panel --------------------------------------------------------------------------
    period = choose_period(shape[1], None)
    keep = leak_patch_half_width(bench)
    probes = np.unique(np.linspace(0, top, 9).round().astype(int))[1:]
    # First bring the point's image (flat SLM) on scale: finds the light, or says it is missing.
    set_exposure_for_peak(cam, lambda: point_image_peak(acq), 0.6)
    flat = acq.capture_masks([np.zeros(shape, np.uint16)])[0]
    if settings.multiplex and regions:
        region_shape = (regions[0][2][0].stop - regions[0][2][0].start, regions[0][2][1].stop - regions[0][2][1].start)
        layout = multiplex_layout(shape, region_shape, n_reg, _reach_samples(bench))
        if layout is not None:
            # The modulator's leak light has sidelobes (the hard edges of its aperture) well beyond its
            # focus; on the central regions' gratings they make a term that the complementary gratings
            # do not cancel (measured: 0.05 rad of phase error on the lab bench), so the dark patch at
            # the centre is widened, up to a quarter of a region.
            wide = max(keep, min(6 * keep, min(region_shape) // 4))
            return _measure_multiplexed(acq, log, settings, progress, regions, n_reg, layout, flat, wide)
    probe = acq.capture_masks([grating(shape, period, top // 2)])[0]
    windows = locate_orders(bench, flat, probe, period)

    def probe_peak() -> tuple[float, float]:
        frames = acq.capture_masks((grating(shape, period, int(g), keep_centre=keep) for g in probes), what="exposure grating")
        return float(frames[:, windows.first].max()), float(np.median(frames))

    set_exposure_for_peak(cam, probe_peak, target_fraction=0.6)
    progress(f"full-panel sweep ({period}-pixel grating, exposure {cam.exposure_s * 1e3:.3g} ms)", 0.05)
    grays = np.unique(np.linspace(0, top, min(settings.levels, levels)).round().astype(int))
    flat = acq.capture_masks([np.zeros(shape, np.uint16)], frames_each=2)[0]
    i1, i0, peak, zero_peak = _sweep(acq, grays, period, None, windows, keep)
    log.add("global_gray", grays)
    log.add("global_first_order", i1)
    log.add("global_zero_order", i0)
    log.add("global_flat_frame", flat)
    log.add("global_exposure_s", cam.exposure_s)
    check_frames(bench, np.array([peak]), float(np.median(flat)), 1.0, "the first diffraction orders")
    t = grays / top
    model, inc, gfit = fit_global(t, i1, settings.knots)
    all_t = np.arange(levels) / top
    phase_global = model.evaluate(inc, all_t)
    if gfit.residual_rms > 0.05:
        raise AmbiguousMeasurement(
            f"{slm.name}: first-order intensities do not follow a monotone phase response (fit residual "
            f"{gfit.residual_rms:.1%} of the swing); check for flicker, a drifting laser or stray light and repeat"
        )
    check_range(float(phase_global[-1]), levels, slm.name)
    tan_rms = _tan2_check(bench, phase_global[grays], i1, i0, flat, windows, zero_peak)

    # -- regions -------------------------------------------------------------------------------
    phase_regions = np.broadcast_to(phase_global, (n_reg, n_reg, levels)).copy()
    warps = np.tile([1.0, 0.0], (n_reg, n_reg, 1))
    region_rms = np.zeros((n_reg, n_reg))
    if regions:
        region_cols = regions[0][2][1].stop - regions[0][2][1].start
        rperiod = choose_period(shape[1], region_cols)
        rgrays = np.unique(np.linspace(0, top, min(settings.region_levels, levels)).round().astype(int))
        rprobe = acq.capture_masks([grating(shape, rperiod, top // 2)])[0]
        rwindows = locate_orders(bench, flat, rprobe, rperiod)
        mid_gray = int(np.argmin(np.abs(phase_global - np.pi)))
        dark = float(np.median(flat))
        log.add("region_gray", rgrays)
        sums = np.zeros((n_reg, n_reg, len(rgrays)))
        exposures = np.zeros((n_reg, n_reg))
        for k, (i, j, sl) in enumerate(regions):
            progress(f"region {i},{j} of {n_reg}x{n_reg} ({rperiod}-pixel grating)", 0.1 + 0.85 * k / len(regions))
            region_probe = grating(shape, rperiod, mid_gray, sl, keep_centre=keep)
            set_exposure_for_peak(
                cam, lambda: (float(acq.capture_masks([region_probe])[0][rwindows.first].max()), dark), 0.6
            )
            exposures[i, j] = cam.exposure_s
            ri1, _, rpeak, _ = _sweep(acq, rgrays, rperiod, sl, rwindows, keep)
            sums[i, j] = ri1
            log.add("region_first_order", sums)
            log.add("region_exposure_s", exposures)
            check_frames(bench, np.array([rpeak]), float(np.median(flat)), 1.0, f"the first orders of SLM region {i},{j}")
            ab, rfit = fit_warp(phase_global[rgrays], sums[i, j])
            warps[i, j] = ab
            region_rms[i, j] = rfit.residual_rms
            phase_regions[i, j] = phase_global * (ab[0] + ab[1] * phase_global / phase_global[-1])
        if region_rms.max() > 0.08:
            raise AmbiguousMeasurement(
                f"{slm.name}: a region's first-order intensities do not follow a monotone phase response "
                f"(worst fit residual {region_rms.max():.1%}); repeat with fewer regions"
            )
    return _tables(slm, settings, regions, n_reg, phase_global, phase_regions, warps, region_rms, grays, i1, gfit,
                   tan_rms, period, rperiod if regions else None, rgrays if regions else None, progress)


def _measure_multiplexed(acq: Acquirer, log: RawLog, settings: PhaseSweepSettings, progress: Progress, regions: list,
                         n_reg: int, layout: MultiplexLayout, flat: np.ndarray, keep: int) -> PhaseCalibration:
    """All regions in one sweep (see the module docstring): each gray level as the regions' gratings and
    as their complements; the full-panel curve from the sum of the regions' first orders, each region
    a warp of it."""
    bench = acq.bench
    slm, cam = bench.fourier_slm, bench.camera
    shape, levels = slm.grid.shape, slm.levels
    top = levels - 1
    windows, radius = locate_multiplexed(acq, layout, regions, flat, top // 2, keep)
    zero_window = disc(flat.shape, brightest(flat), radius)
    reference = _fringing_reference_setup(acq, settings, regions, layout, flat)
    # the flat panel (the zero order's wings reach the windows) and a grating near φ = π with its
    # complement (the first orders interfere with those wings, constructively in one of the two)
    probes = [(0, False), (top // 2, False), (top // 2, True)]

    def probe_peak(group: list[int]) -> tuple[float, float]:
        frames = acq.capture_masks((multiplexed_grating(shape, layout, regions, g, complement=c, keep_centre=keep, only=group)
                                    for g, c in probes), what="exposure grating")
        group_window = np.any([windows[r] for r in group], axis=0)
        return float(frames[:, group_window].max()), float(np.median(frames))

    flat = acq.capture_masks([np.zeros(shape, np.uint16)], frames_each=2)[0]
    n_groups = len(layout.groups)
    n_levels = min(settings.multiplex_levels, levels)
    # the groups' gray levels interleave: together they sample the response n_groups times as finely
    fine = np.linspace(0, top, n_groups * n_levels)
    group_grays = [np.unique(fine[g::n_groups].round().astype(int)) for g in range(n_groups)]
    group_grays[0][0], group_grays[-1][-1] = 0, top  # both ends measured
    sums: list[np.ndarray] = [np.zeros(0)] * len(regions)
    zero_sums, peak, exposures = [], 0.0, []
    for g, (group, grays) in enumerate(zip(layout.groups, group_grays)):
        set_exposure_for_peak(cam, lambda group=group: probe_peak(group), target_fraction=0.6)
        exposures.append(cam.exposure_s)
        progress(f"regions {group} ({g + 1} of {n_groups} groups, exposure {cam.exposure_s * 1e3:.3g} ms)",
                 0.1 + 0.85 * g / n_groups)
        frames = acq.capture_masks((multiplexed_grating(shape, layout, regions, int(v), complement=c, keep_centre=keep,
                                                        only=group)
                                    for v in grays for c in (False, True)), what="region gratings")
        for r in group:
            sums[r] = frames[:, windows[r]].sum(axis=1, dtype=np.float64).reshape(-1, 2).mean(axis=1)
        zero_sums.append(frames[:, zero_window].sum(axis=1, dtype=np.float64).reshape(-1, 2).mean(axis=1) / cam.exposure_s)
        peak = max(peak, float(frames[:, np.any([windows[r] for r in group], axis=0)].max()))
    check_frames(bench, np.array([peak]), float(np.median(flat)), 1.0, "the regions' first diffraction orders")
    # The full-panel curve: each group's summed first orders on a common scale (its own swing and
    # background from a coarse fit), all groups' levels together.
    norm = []
    for group, grays in zip(layout.groups, group_grays):
        total = np.sum([sums[r] for r in group], axis=0)
        _, _, coarse = fit_global(grays / top, total, max(3, min(settings.knots, len(grays) // 4)))
        norm.append((total - coarse.background) / max(coarse.amplitude, 1e-12))
    grays = np.concatenate(group_grays)
    order = np.argsort(grays, kind="stable")
    grays, i1, i0 = grays[order], np.concatenate(norm)[order], np.concatenate(zero_sums)[order]
    log.add("global_gray", grays)
    log.add("global_first_order", i1)
    log.add("global_zero_order", i0)
    log.add("global_flat_frame", flat)
    log.add("global_exposure_s", cam.exposure_s)
    log.add("region_exposure_s", np.asarray(exposures))
    log.add("region_gray", np.concatenate([group_grays[[r in grp for grp in layout.groups].index(True)] for r in range(len(regions))]))
    log.add("region_first_order", np.concatenate(sums))
    log.add("region_grating_vectors", np.asarray(layout.vectors))
    model, inc, gfit = fit_global(grays / top, i1, settings.knots)
    phase_global = model.evaluate(inc, np.arange(levels) / top)
    if gfit.residual_rms > 0.05:
        raise AmbiguousMeasurement(
            f"{slm.name}: first-order intensities do not follow a monotone phase response (fit residual "
            f"{gfit.residual_rms:.1%} of the swing); check for flicker, a drifting laser or stray light and repeat"
        )
    check_range(float(phase_global[-1]), levels, slm.name)
    phase_regions = np.broadcast_to(phase_global, (n_reg, n_reg, levels)).copy()
    warps = np.tile([1.0, 0.0], (n_reg, n_reg, 1))
    region_rms = np.zeros((n_reg, n_reg))
    for r, (i, j, _) in enumerate(regions):
        rgrays = group_grays[[r in grp for grp in layout.groups].index(True)]
        ab, rfit = fit_warp(phase_global[rgrays], sums[r])
        warps[i, j] = ab
        region_rms[i, j] = rfit.residual_rms
        phase_regions[i, j] = phase_global * (ab[0] + ab[1] * phase_global / phase_global[-1])
    if region_rms.max() > 0.08:
        raise AmbiguousMeasurement(
            f"{slm.name}: a region's first-order intensities do not follow a monotone phase response "
            f"(worst fit residual {region_rms.max():.1%}); repeat with fewer regions"
        )
    apparent_global, fringing_params = phase_global, {"fringing_correction": None}
    if reference is not None:
        progress("fringing reference (corner regions, longer grating period)", 0.95)
        alpha, fringing_params = _fringing_reference(acq, log, settings, regions, layout, reference, sums, group_grays,
                                                     phase_global, keep)
        phase_global, phase_regions, warps = _undo_fringing(alpha, layout, regions, phase_global, phase_regions)
        check_range(float(phase_global[-1]), levels, slm.name)
    extra = {"multiplexed_regions": True, **fringing_params, "region_grating_vectors": [list(v) for v in layout.vectors],
             "region_grating_rule": "region r: ((a*(x - cols//2) + b*(y - rows//2)) mod grating_period_px) >= grating_period_px/2, "
                                    "(a, b) = region_grating_vectors[r]",
             "region_groups": layout.groups, "region_window_radius_px": radius}
    return _tables(slm, settings, regions, n_reg, phase_global, phase_regions, warps, region_rms, grays, i1, gfit,
                   None, layout.period, layout.period, group_grays[0], progress, extra, apparent_global)


@dataclass
class FringingReference:
    """The longer-period grating over the central regions that :func:`_fringing_reference` sweeps."""

    members: list[int]  # the corner regions (outermost ring of the multiplexed layout)
    period: int  # of the reference grating, along x (SLM px)
    windows: OrderWindows


def grating_frequency_sq(vector: tuple[int, int], period: int) -> float:
    """|f|² (cycles² per SLM px²) of the binary grating ``((a·x + b·y) mod period) ≥ period/2``."""
    a, b = vector
    return float(a * a + b * b) / period**2


def outer_regions(regions: list, layout: MultiplexLayout) -> list[int]:
    """The regions farthest from the panel centre (the corners), which the leak light's arms miss."""
    n = int(round(np.sqrt(len(regions))))
    c = (np.arange(n) + 0.5) / n * 2 - 1
    dist = [round(float(np.hypot(c[i], c[j])), 6) for i, j, _ in regions]
    return [r for r in range(len(regions)) if dist[r] == max(dist)]


def reference_grating(shape: tuple[int, int], regions: list, members: list[int], period: int, gray: int,
                      complement: bool = False) -> np.ndarray:
    """One binary grating along x (:func:`grating`, the same phase origin everywhere) shown in the regions
    ``members`` only; the rest of the panel at 0."""
    full = grating(shape, period, gray, complement=complement)
    out = np.zeros(shape, np.uint16)
    for r in members:
        sl = regions[r][2]
        out[sl] = full[sl]
    return out


def _fringing_reference_setup(acq: Acquirer, settings: PhaseSweepSettings, regions: list, layout: MultiplexLayout,
                              flat: np.ndarray) -> FringingReference | None:
    """Where the fringing reference's first orders fall (a probe at the exposure ``flat`` was taken at),
    or None when it is off or cannot be made (no period clearly longer than the multiplexed gratings')."""
    if settings.fringing_levels <= 0:
        return None
    members = outer_regions(regions, layout)
    shape = acq.bench.fourier_slm.grid.shape
    try:
        period = choose_period(shape[1], regions[0][2][1].stop - regions[0][2][1].start)
    except AmbiguousMeasurement:
        return None
    u_in = np.mean([grating_frequency_sq(layout.vectors[r], layout.period) for r in members])
    if grating_frequency_sq((1, 0), period) > 0.6 * u_in:  # too close to extrapolate from
        return None
    top = acq.bench.fourier_slm.levels - 1
    probe = acq.capture_masks([reference_grating(shape, regions, members, period, top // 2)], what="fringing reference probe")[0]
    return FringingReference(members, period, locate_orders(acq.bench, flat, probe, period))


def _fringing_reference(acq: Acquirer, log: RawLog, settings: PhaseSweepSettings, regions: list, layout: MultiplexLayout,
                        ref: FringingReference, sums: list[np.ndarray], group_grays: list[np.ndarray],
                        phase_global: np.ndarray, keep: int) -> tuple[np.ndarray, dict]:
    """Fringing compression of the apparent phase, per gray level: α(g) in φ_apparent = φ·(1 − α·|f|²).

    The central regions are swept once more as one block under a binary grating of a longer period
    (|f|² at most 0.6 of the multiplexed gratings'); each central region's multiplexed response is
    fitted as a warp m_r(t) = a + b·t of the reference's, and with m̄ their mean,
    m̄ = (1 − α·ū)/(1 − α·|f_ref|²) gives α (ū: the central regions' mean |f|²). Same pixels, same
    illumination: the only difference between the two is the gratings' spatial frequency.
    """
    bench = acq.bench
    slm, cam = bench.fourier_slm, bench.camera
    shape, levels = slm.grid.shape, slm.levels
    top = levels - 1
    probes = [(0, False), (top // 2, False), (top // 2, True)]

    def probe_peak() -> tuple[float, float]:
        frames = acq.capture_masks((reference_grating(shape, regions, ref.members, ref.period, g, complement=c) for g, c in probes),
                                   what="exposure grating")
        return float(frames[:, ref.windows.first].max()), float(np.median(frames))

    set_exposure_for_peak(cam, probe_peak, target_fraction=0.6)
    grays = np.unique(np.linspace(0, top, min(settings.fringing_levels, levels)).round().astype(int))
    frames = acq.capture_masks((reference_grating(shape, regions, ref.members, ref.period, int(g), complement=c)
                                for g in grays for c in (False, True)), what="fringing reference grating")
    i1 = frames[:, ref.windows.first].sum(axis=1, dtype=np.float64).reshape(-1, 2).mean(axis=1)
    log.add("fringing_reference_gray", grays)
    log.add("fringing_reference_first_order", i1)
    log.add("fringing_reference_exposure_s", cam.exposure_s)
    model, inc, fit = fit_global(grays / top, i1, settings.knots)
    if fit.residual_rms > 0.05:
        raise AmbiguousMeasurement(
            f"{slm.name}: the fringing reference's first orders do not follow a monotone phase response (fit residual "
            f"{fit.residual_rms:.1%} of the swing); check for flicker, a drifting laser or stray light and repeat"
        )
    phase_ref = model.evaluate(inc, np.arange(levels) / top)
    log.add("fringing_reference_phase", phase_ref)
    ab = []
    for r in ref.members:
        rgrays = group_grays[[r in grp for grp in layout.groups].index(True)]
        ab.append(fit_warp(phase_ref[rgrays], sums[r])[0])
    a, b = np.mean(ab, axis=0)
    t = phase_ref / max(float(phase_ref[-1]), 1e-9)
    ratio = a + b * t  # multiplexed over reference, per gray level
    u_ref = grating_frequency_sq((1, 0), ref.period)
    u_in = float(np.mean([grating_frequency_sq(layout.vectors[r], layout.period) for r in ref.members]))
    alpha = (1 - ratio) / (u_in - ratio * u_ref)
    compression = alpha * u_in
    if np.max(np.abs(compression)) > 0.1:
        raise AmbiguousMeasurement(
            f"{slm.name}: the central regions' response under the multiplexed gratings differs from a "
            f"{ref.period}-pixel grating's by up to {np.max(np.abs(compression)):.1%}, more than fringing explains; "
            "repeat, or measure region by region (multiplex off)"
        )
    params = {
        "fringing_correction": "phi = phi_apparent / (1 - alpha*|f|^2), alpha per gray level from the central regions "
                               "under the multiplexed gratings vs one grating of fringing_reference_period_px",
        "fringing_reference_period_px": ref.period,
        "fringing_reference_regions": ref.members,
        "fringing_reference_levels": int(len(grays)),
        "fringing_compression_at_half_scale": float(np.interp(0.5, t, compression)),
        "fringing_compression_at_full_scale": float(compression[-1]),
        "fringing_reference_fit_rms_rel": fit.residual_rms,
    }
    return alpha, params


def _undo_fringing(alpha: np.ndarray, layout: MultiplexLayout, regions: list, phase_global: np.ndarray,
                   phase_regions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each region's curve divided by its compression 1 − α·|f_r|², the full-panel curve by the regions'
    mean; each region's warp refitted to the corrected full-panel curve. Returns (global, regions, warps)."""
    u = np.array([grating_frequency_sq(v, layout.period) for v in layout.vectors])
    glob = phase_global / (1 - alpha * u.mean())
    out = phase_regions.copy()
    warps = np.tile([1.0, 0.0], (*phase_regions.shape[:2], 1))
    t = glob / max(float(glob[-1]), 1e-9)
    design = np.stack([glob, glob * t], axis=1)
    for r, (i, j, _) in enumerate(regions):
        out[i, j] = phase_regions[i, j] / (1 - alpha * u[r])
        warps[i, j], *_ = np.linalg.lstsq(design, out[i, j], rcond=None)
        out[i, j] = design @ warps[i, j]
    return glob, out, warps


def _tables(slm, settings: PhaseSweepSettings, regions: list, n_reg: int, phase_global: np.ndarray,
            phase_regions: np.ndarray, warps: np.ndarray, region_rms: np.ndarray, grays: np.ndarray, i1: np.ndarray,
            gfit: CurveFit, tan_rms: float | None, period: int, rperiod: int | None, rgrays: np.ndarray | None,
            progress: Progress, extra_params: dict | None = None,
            apparent_global: np.ndarray | None = None) -> PhaseCalibration:
    """Lookup tables from the fitted responses, and the calibration's parameters, residuals and arrays.

    ``apparent_global``: the curve the intensities ``i1`` were fitted with, where ``phase_global`` is
    that curve corrected (fringing); the point-wise phases are corrected by the same factor."""
    shape, levels = slm.grid.shape, slm.levels
    progress("building lookup tables", 0.97)
    warp_misfit = None
    if regions:
        n_tab = max(n_reg, min(settings.table_regions, shape[0] // 4, shape[1] // 4))
        fine, warp_misfit = smooth_warp(warps, n_tab)
        curves = phase_global * (fine[..., :1] + fine[..., 1:] * phase_global / phase_global[-1])
        if np.any(np.diff(curves, axis=-1) < 0):
            raise AmbiguousMeasurement(f"{slm.name}: the smoothed regional responses are not monotone; repeat with fewer regions")
        for i, j in zip(*np.nonzero(curves[..., -1] < TWO_PI)):
            check_range(float(curves[i, j, -1]), levels, f"{slm.name} table region {i},{j}")
        gray_lut = np.stack([[lut_from_curve(curves[i, j], settings.table_samples) for j in range(n_tab)] for i in range(n_tab)])
    else:
        curves = phase_global[None, None]
        gray_lut = lut_from_curve(phase_global, settings.table_samples)
    lut_err = lut_error(gray_lut, curves, settings.table_samples)
    table = PhaseTable(gray=gray_lut, bit_depth=slm.bit_depth)
    params = {
        "bit_depth": slm.bit_depth,
        "grating_period_px": period,
        "region_grating_period_px": rperiod,
        "regions_measured": n_reg,
        "table_regions": int(gray_lut.shape[0]) if gray_lut.ndim == 3 else 1,
        "levels_sampled": int(len(grays)),
        "region_levels_sampled": int(len(rgrays)) if rgrays is not None else 0,
        "phase_at_full_scale_rad": float(phase_global[-1]),
        "fit_amplitude": gfit.amplitude,
        "fit_background": gfit.background,
        "model": f"monotone cubic B-spline, {settings.knots} intervals; regions: phi_G*(a + b*phi_G/phi_G[-1])",
        "table_samples": settings.table_samples,
        **(extra_params or {}),
    }
    residuals = {
        "intensity_fit_rms_rel": gfit.residual_rms,
        "phase_fit_rms_rad": gfit.phase_residual_rms_rad,
        "tan2_ratio_vs_fit_rms_rad": tan_rms,
        "region_intensity_fit_rms_rel_max": float(region_rms.max()) if regions else None,
        "region_scale_surface_misfit": warp_misfit,
        "table_quantisation_rms_rad": lut_err,
    }
    apparent = phase_global if apparent_global is None else apparent_global
    factor = np.divide(phase_global, apparent, out=np.ones_like(phase_global), where=apparent > 1e-9)
    arrays = {
        "table_gray": gray_lut,
        "phase_global": phase_global,
        "phase_regions": phase_regions,
        "region_warp": warps,
        "measured_gray": grays,
        "measured_phase": pointwise_phase(apparent[grays], i1, gfit.amplitude, gfit.background) * factor[grays],
    }
    return PhaseCalibration(table, np.arange(levels), phase_global, phase_regions, params, residuals, arrays)


def _tan2_check(bench: Bench, phase: np.ndarray, i1: np.ndarray, i0: np.ndarray, flat: np.ndarray,
                windows: OrderWindows, zero_peak: float) -> float | None:
    """RMS difference between the fit and tan²(φ/2) = (π²/4)·I₁/I₀ (None when the zero order clipped).

    Folded into [0, π] like the ratio itself; biased near π by the fill-factor zero-order leak.
    """
    if zero_peak >= bench.camera.max_level - 0.5:
        return None
    dark = float(np.median(flat))
    first = (i1 - i1[0]) / 2  # each window sum holds both first orders
    zero = i0 - dark * windows.zero.sum()
    tan_phase = 2 * np.arctan(np.sqrt(np.pi**2 / 4 * np.clip(first, 0, None) / np.maximum(zero, 1e-12)))
    folded = np.mod(phase, TWO_PI)
    folded = np.minimum(folded, TWO_PI - folded)
    good = (folded > 0.3) & (folded < 2.5)
    return float(np.sqrt(np.mean((tan_phase - folded)[good] ** 2))) if good.any() else None


def lut_error(gray_lut: np.ndarray, phase_curves: np.ndarray, samples: int) -> float:
    """RMS, over targets and regions, of the fitted phase of the chosen gray minus the target (mod 2π)."""
    lut = gray_lut.reshape(-1, samples)
    curves = phase_curves.reshape(-1, phase_curves.shape[-1])
    target = np.arange(samples) * TWO_PI / samples
    err = np.angle(np.exp(1j * (np.take_along_axis(curves, lut.astype(int), axis=1) - target)))
    return float(np.sqrt(np.mean(err**2)))
