"""The Fourier SLM's fringing field and fill factor: the width (SLM pixels) of the Gaussian by which the
liquid crystal smooths the addressed phase between neighbouring pixels, and the modulated fraction of
each pixel's area.

Why it is measured: the twin that optics-aware students train through, and that the optimised export
fits through, must show what the panel shows. Fringing turns every phase wrap of a mask into a ramp
one or two pixels wide, and light that a mask steers with fine structure comes back into the zero
order, onto the tiles near the centre; on the simulated benches a twin without it read an
optics-aware student's 85 % as chance at 0.7 px (benchmarks/optical_parity.md).

How: the point source lights the panel and the camera sees its far field (as for the phase table,
:mod:`calibration.slm_phase`). A binary grating of phase 0 / π (through the fitted table) sends no
light into the zero order; the fringing field smooths each bar edge, so pixels next to an edge show
phases between 0 and π and the zero order comes back:

    r(P) = I₀(grating of period P) / I₀(flat) = |(1 − F) + F·⟨exp(iπ·(b_P ∗ g_σ))⟩|²,

b_P the bars (0 / 1, P/2 pixels each), g_σ the pixel-sampled Gaussian, F the pixels' fill factor
(the gaps between the pixel apertures reflect unmodulated light into the zero order; the model of
:mod:`labctl.optics.propagation`). The mean of the blurred grating's phasor is imaginary, so the two
terms add in power: r(P) = (1 − F)² + F²·r_σ(P). Period 2 (every pixel at an edge) is the most
sensitive to σ, period 4 much less, which separates the two; both orientations are shown. Each
pattern is captured with the point on and off: the difference removes the dark level and the
modulator's leak light. σ and F are fitted to all ratios by least squares; a panel whose fringing is
not Gaussian (a real one) gets the Gaussian width that best explains them, and the fit's residual
says how well it does. What the fit cannot tell apart: a table that shows π short (or long) leaves a
zero order of cos²(φ/2) that F absorbs (π shown as 0.8π: F 0.69 with no misfit), so F is the fill
factor times the table's accuracy at π; and below about 0.25 px the pixel-sampled kernel's weight on
a neighbour is under 1e-5, so a narrower fringing reads as some width under 0.25. Refused: a width
past MAX_SIGMA_PX (both gratings' zero orders then near the flat panel's: the panel barely
modulates, or stray light) and F at MIN_FILL_FACTOR. Measured against the simulator's hidden truth
in tests/test_slm_fringing.py and benchmarks/calibration_accuracy.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from calibration.acquisition import Acquirer
from calibration.errors import AmbiguousMeasurement
from calibration.exposure import check_frames, peak_over, set_exposure_for_peak
from calibration.raw_log import Progress, RawLog, no_progress
from calibration.spots import brightest, disc, point_source
from drivers.phase_table import PhaseTable

#: the widest fringing (SLM px) the fit reports: past ~1.2 px both zero orders are near the flat
#: panel's and the width is no longer measured, only that the panel barely modulates
MAX_SIGMA_PX = 1.2
#: the smallest fill factor the fit reports
MIN_FILL_FACTOR = 0.5


@dataclass(frozen=True)
class FringingSettings:
    periods: tuple[int, ...] = (2, 4)  # binary grating periods (SLM px, even; at least two to separate σ from F)
    frames_each: int = 2  # frames averaged per pattern
    window_radius_px: float = 4.0  # camera px summed around the zero order

    def __post_init__(self) -> None:
        if len(set(self.periods)) < 2 or any(p < 2 or p % 2 for p in self.periods):
            raise AmbiguousMeasurement(f"fringing needs at least two different even grating periods >= 2 px; got {self.periods}")
        if self.frames_each < 1 or self.window_radius_px <= 0:
            raise AmbiguousMeasurement(f"frames_each must be >= 1 and the window radius > 0; got {self.frames_each}, {self.window_radius_px}")


@dataclass(frozen=True)
class FringingMeasurement:
    """What goes into the SLM phase record: ``params`` (fringing_sigma_px, fill_factor and the ratios
    they were fitted to) and ``residuals`` (the fit's misfit)."""

    params: dict
    residuals: dict


def zero_order_ratio(period: int, sigma_px: float) -> float:
    """Model r(P): the zero-order intensity of a 0/π binary grating of ``period`` SLM px whose phase is
    smoothed by a Gaussian of ``sigma_px`` pixels (sampled at pixel offsets, as the twin does), relative
    to a flat panel's."""
    if period < 2 or period % 2:
        raise AmbiguousMeasurement(f"a binary grating needs an even period of at least 2 px; got {period}")
    bars = (np.arange(period) >= period // 2).astype(np.float64)
    if sigma_px > 0:
        radius = max(1, int(np.ceil(3 * sigma_px)))
        t = np.arange(-radius, radius + 1)
        kernel = np.exp(-0.5 * (t / sigma_px) ** 2)
        kernel /= kernel.sum()
        bars = sum(w * np.roll(bars, int(s)) for w, s in zip(kernel, t))  # circular: the grating repeats
    return float(np.abs(np.mean(np.exp(1j * np.pi * bars))) ** 2)


def grating_ratio(period: int, sigma_px: float, fill_factor: float) -> float:
    """Model r(P) with the pixel gaps' unmodulated light: (1 − F)² + F²·:func:`zero_order_ratio`."""
    return (1 - fill_factor) ** 2 + fill_factor**2 * zero_order_ratio(period, sigma_px)


def fit_fringing(periods: np.ndarray, ratios: np.ndarray) -> tuple[float, float, float]:
    """Least-squares fringing width (px) and fill factor for measured zero-order ``ratios`` at grating
    ``periods``; and the rms misfit of the ratios."""
    def residuals(p: np.ndarray) -> np.ndarray:
        return np.array([grating_ratio(int(q), p[0], p[1]) - r for q, r in zip(periods, ratios)])

    starts = [(s, f) for s in np.linspace(0.0, MAX_SIGMA_PX, 51) for f in np.linspace(MIN_FILL_FACTOR, 1.0, 26)]
    start = min(starts, key=lambda p: float(np.sum(residuals(np.array(p)) ** 2)))
    fit = optimize.least_squares(residuals, start, bounds=([0.0, MIN_FILL_FACTOR], [MAX_SIGMA_PX, 1.0]), diff_step=1e-3)
    return float(fit.x[0]), float(fit.x[1]), float(np.sqrt(np.mean(fit.fun**2)))


def binary_grating(table: PhaseTable, shape: tuple[int, int], period: int, axis: int) -> np.ndarray:
    """Gray levels of a 0/π grating of ``period`` px whose bars run across ``axis`` (0: the phase changes
    from row to row; 1: from column to column), through ``table``."""
    index = np.indices(shape)[axis]
    phase = np.where(index % period >= period // 2, np.pi, 0.0)
    return table.gray_for_phase(phase)


def measure_fringing(acq: Acquirer, log: RawLog, table: PhaseTable, settings: FringingSettings = FringingSettings(),
                     progress: Progress = no_progress) -> FringingMeasurement:
    """Show flat and 0/π gratings (through ``table``) with the point source on and off; fit σ and F."""
    bench = acq.bench
    slm, cam = bench.fourier_slm, bench.camera
    shape = slm.grid.shape
    point, dark_input = point_source(bench), np.zeros(bench.input_slm.grid.shape)
    flat = table.gray_for_phase(np.zeros(shape))
    patterns = [flat] + [binary_grating(table, shape, p, axis) for p in settings.periods for axis in (0, 1)]

    def frames(lit: bool, what: str) -> np.ndarray:
        acq.set_input(point if lit else dark_input)
        return acq.capture_masks(patterns, frames_each=settings.frames_each, what=what)

    def flat_peak() -> tuple[float, float]:
        acq.set_input(point)
        on = acq.capture_masks([flat], what="fringing exposure")[0]
        acq.set_input(dark_input)
        off = acq.capture_masks([flat], what="fringing exposure")[0]
        return peak_over(on, off)

    progress("fringing: exposure for the flat panel's zero order", 0.0)
    set_exposure_for_peak(cam, flat_peak, 0.6)
    progress(f"fringing: {len(patterns)} patterns, point on and off", 0.3)
    on, off = frames(True, "fringing grating"), frames(False, "fringing grating (point off)")
    acq.set_input(point)
    signal = on.astype(np.float64) - off
    window = disc(shape=signal.shape[1:], center_xy=brightest(signal[0]), radius=settings.window_radius_px)
    check_frames(bench, on[0][window], float(np.median(off[0])), 1.0, "the flat panel's zero order")
    sums = signal[:, window].sum(axis=1)
    if sums[0] <= 0:
        raise AmbiguousMeasurement(f"{slm.name}: no zero order of the point source through a flat panel; check the alignment")
    ratios = np.clip(sums[1:] / sums[0], 0.0, None)
    periods = np.repeat(np.asarray(settings.periods), 2)
    sigma, fill, rms = fit_fringing(periods, ratios)
    log.add("fringing_periods_px", periods)
    log.add("fringing_zero_order_ratio", ratios)
    log.add("fringing_exposure_s", cam.exposure_s)
    if sigma >= MAX_SIGMA_PX - 1e-3:
        raise AmbiguousMeasurement(
            f"{slm.name}: the 0/π gratings leave {ratios.max():.0%} of the flat panel's zero order, as if the fringing were "
            f"wider than {MAX_SIGMA_PX} px; check that the panel modulates (the phase table's π), and for stray light, and repeat"
        )
    if fill <= MIN_FILL_FACTOR + 1e-3:
        raise AmbiguousMeasurement(
            f"{slm.name}: the 0/π gratings' zero order ({ratios.min():.1%} of the flat panel's at the least) needs a fill "
            f"factor of {MIN_FILL_FACTOR} or less; check the phase table's π (a short π leaves a zero order too) and repeat"
        )
    params = {
        "fringing_sigma_px": sigma,
        "fill_factor": fill,
        "fringing_model": "LC phase = addressed phase smoothed by a pixel-sampled Gaussian of fringing_sigma_px, pixel "
                          "gaps (1 - fill_factor) unmodulated; fitted to the zero order of 0/pi binary gratings "
                          "relative to a flat panel",
        "fringing_grating_periods_px": [int(p) for p in periods],  # one per ratio
        "fringing_grating_axes": [0, 1] * len(settings.periods),  # 0: the phase changes from row to row
        "fringing_zero_order_ratios": [float(r) for r in ratios],
    }
    progress(f"fringing: σ = {sigma:.2f} px, fill factor {fill:.2f}", 1.0)
    return FringingMeasurement(params, {"fringing_ratio_fit_rms": rms})
