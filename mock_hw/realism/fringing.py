"""Fringing fields computed at sub-pixel resolution from the addressed voltages.

A pixel's electrode field spreads into its neighbours over about the LC layer's thickness, so the
LC director (and the phase) varies within each pixel near a gray-level edge. The voltage pattern is
sampled at ``OVERSAMPLE``² points per pixel, smoothed by a Gaussian of the fringing width, turned into
phase by the panel's nonlinear gray→phase response *at each sub-pixel point* (after the smoothing, as
the LC responds to voltage), and each pixel's transmission is the mean of ``exp(iφ)`` over its
sub-pixels: a complex number of modulus below one at edges (the light diffracted out of the pixel's
mean). The twin blurs the *phase* per pixel instead, which has neither the nonlinearity after the
blur nor the loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from mock_hw.truth import PhaseResponseTruth

#: sub-pixel samples per pixel and axis
OVERSAMPLE = 4


@dataclass(frozen=True)
class SubpixelFringing:
    width_m: float  # standard deviation of the Gaussian spread of the fringing field

    def pixels(
        self, gray: np.ndarray, response: PhaseResponseTruth, pitch_m: float, extra_phase_rad: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(complex transmission of each pixel, its mean LC phase) for a gray pattern (rows, cols).

        ``extra_phase_rad``: gray-independent phase per pixel (surface bow) added before averaging."""
        rows, cols = gray.shape
        s = OVERSAMPLE
        fine = np.repeat(np.repeat(gray.astype(np.float64), s, axis=0), s, axis=1)
        fine = ndimage.gaussian_filter(fine, self.width_m / pitch_m * s, mode="nearest")
        scale = np.repeat(np.repeat(response.scale_map(rows, cols), s, axis=0), s, axis=1)
        lc_phase = response.curve(fine) * scale
        total = lc_phase if extra_phase_rad is None else lc_phase + np.repeat(np.repeat(extra_phase_rad, s, axis=0), s, axis=1)
        field = np.exp(1j * total).reshape(rows, s, cols, s).mean(axis=(1, 3))
        return field, lc_phase.reshape(rows, s, cols, s).mean(axis=(1, 3))


def draw_fringing(rng: np.random.Generator, width_m: float) -> SubpixelFringing:
    return SubpixelFringing(width_m * rng.uniform(0.8, 1.2))
