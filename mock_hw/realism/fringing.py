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
        sigma = self.width_m / pitch_m * s
        scale_px = response.scale_map(rows, cols)
        lc_px = response.curve(gray) * scale_px  # a pixel whose surroundings show its own gray: uniform
        field = np.exp(1j * (lc_px if extra_phase_rad is None else lc_px + extra_phase_rad))
        # Pixels with another gray level within the filter's reach (4σ, scipy's truncation) are edges:
        # only there does the voltage vary within the pixel.
        reach = int(4.0 * sigma + 0.5) // s + 1
        g = gray.astype(np.float64)
        size = 2 * reach + 1
        edge = ndimage.maximum_filter(g, size, mode="nearest") != ndimage.minimum_filter(g, size, mode="nearest")
        if not edge.any():
            return field, lc_px
        fine = np.repeat(np.repeat(g, s, axis=0), s, axis=1)
        fine = ndimage.gaussian_filter(fine, sigma, mode="nearest").reshape(rows, s, cols, s).transpose(0, 2, 1, 3)[edge]
        lc_phase = response.curve(fine) * scale_px[edge][:, None, None]  # (edge pixels, s, s)
        total = lc_phase if extra_phase_rad is None else lc_phase + extra_phase_rad[edge][:, None, None]
        field[edge] = np.exp(1j * total).mean(axis=(1, 2))
        lc = lc_px.copy()
        lc[edge] = lc_phase.mean(axis=(1, 2))
        return field, lc


def draw_fringing(rng: np.random.Generator, width_m: float) -> SubpixelFringing:
    return SubpixelFringing(width_m * rng.uniform(0.8, 1.2))
