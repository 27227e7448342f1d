"""Input modulators other than an ideal linear amplitude one.

**DMD**: each micromirror is on or off. Gray comes from pulse-width modulation: within each PWM
period T the bit planes of the gray levels are shown in turn, most significant first, plane b for
``T·2^b/(2^n − 1)``. The camera integrates the *intensity* of each binary frame over its exposure (the
planes follow each other in time; they do not interfere), so a frame is ``Σ_b w_b·|out(plane_b)|²``,
w_b the fraction of the exposure plane b was shown. Over whole PWM periods w_b = 2^b/(2^n − 1) and the
mean intensity is linear in gray (an ideal amplitude modulator's is quadratic); an exposure that is not
a multiple of T catches a partial period and shows a gray error that depends on when it started. The
PWM runs continuously on the bench clock, from a phase drawn from the seed. An off mirror still
sends a little light into the system (the finite contrast, the modulator's leak amplitude).

**LC amplitude modulator**: a twisted/parallel-aligned LC cell between polarisers. Its retardance
Γ(g) = Γ₀·(1 − g/(L − 1)) falls with the drive; the transmitted field is ``cos(Γ/2)·exp(−iκΓ/2)``:
intensity follows cos²(Γ/2), and the extraordinary wave's path length, which changes with Γ, adds a
phase (κ ≤ 1: the coupling a real cell shows once the polarisers are set for amplitude). Γ₀ is near
π, not exactly: the darkest level is not black.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DMDModulation:
    pwm_period_s: float
    bits: int
    pwm_phase_s: float  # where in its period the PWM is at t = 0

    def plane_slots(self) -> tuple[np.ndarray, np.ndarray]:
        """(start, end) of each bit plane (index b = bit b, LSB first) within the period, MSB shown first."""
        durations = self.pwm_period_s * 2.0 ** np.arange(self.bits) / (2**self.bits - 1)
        ends = np.cumsum(durations[::-1])[::-1]  # bit b runs over [Σ_{k>b} d_k, Σ_{k≥b} d_k)
        return ends - durations, ends

    def plane_weights(self, start_s: np.ndarray, exposure_s: float) -> np.ndarray:
        """(frames, bits): the fraction of each exposure during which each bit plane is shown."""
        if exposure_s <= 0:
            return np.tile(2.0 ** np.arange(self.bits) / (2**self.bits - 1), (len(start_s), 1))
        lo, hi = self.plane_slots()
        period = self.pwm_period_s

        def shown_until(t: np.ndarray) -> np.ndarray:  # time plane b was shown in [0, t), per plane
            t = t[:, None] + self.pwm_phase_s
            whole = np.floor(t / period)
            return whole * (hi - lo) + np.clip(t - whole * period - lo, 0, hi - lo)

        start = np.asarray(start_s, dtype=np.float64)
        return (shown_until(start + exposure_s) - shown_until(start)) / exposure_s

    def planes(self, gray: np.ndarray) -> np.ndarray:
        """(bits, ...) mirror states: bit b of each gray level."""
        g = gray.astype(np.int64)
        return np.stack([(g >> b) & 1 for b in range(self.bits)]).astype(np.float32)


@dataclass(frozen=True)
class LCModulation:
    retardance_dark_rad: float  # Γ₀: the retardance at gray 0
    phase_coupling: float  # κ

    def retardance_rad(self, gray: np.ndarray, levels: int) -> np.ndarray:
        return self.retardance_dark_rad * (1 - gray.astype(np.float64) / (levels - 1))

    def field(self, gray: np.ndarray, levels: int) -> np.ndarray:
        """Complex field amplitude transmitted at each gray level (before the beam)."""
        gamma = self.retardance_rad(gray, levels)
        return np.cos(gamma / 2) * np.exp(-0.5j * self.phase_coupling * gamma)


def draw_dmd(rng: np.random.Generator, pwm_period_s: float, bits: int) -> DMDModulation:
    return DMDModulation(pwm_period_s, bits, float(rng.uniform(0, pwm_period_s)))


def draw_lc(rng: np.random.Generator, phase_coupling: float) -> LCModulation:
    return LCModulation(float(np.pi * rng.uniform(0.97, 1.04)), float(phase_coupling * rng.uniform(0.8, 1.0)))
