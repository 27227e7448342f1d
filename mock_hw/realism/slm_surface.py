"""SLM surface curvature: the reflective panel is not flat.

A silicon backplane bows (mounting stress, the LC cell's glass): its height h(x, y) adds
``4π·h/λ`` of phase to every pixel whatever gray level it shows (the light crosses the height
twice). The bow is a smooth mix of a spherical part, astigmatic parts (a saddle and a cylinder) and a
fourth-order part, over the panel normalised to its half-diagonal; the phase-response fit (a gray→
phase curve scaled across the panel) has no additive, gray-independent term to absorb it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SurfaceBow:
    """Height h = Σ c_k·b_k(x, y), with b = (r², x² − y², 2xy, r⁴) over the panel (r = 1 at its corners)."""

    coefficients_m: tuple[float, float, float, float]

    def height_m(self, rows: int, cols: int) -> np.ndarray:
        half = 0.5 * float(np.hypot(rows, cols))
        y = ((np.arange(rows) - (rows - 1) / 2) / half)[:, None]
        x = ((np.arange(cols) - (cols - 1) / 2) / half)[None, :]
        r2 = x**2 + y**2
        basis = (r2, x**2 - y**2, 2 * x * y, r2**2)
        return sum((c * b for c, b in zip(self.coefficients_m, basis)), np.zeros((rows, cols)))

    def phase_rad(self, rows: int, cols: int, wavelength_m: float) -> np.ndarray:
        """The bow's phase on each pixel (reflective: twice the height)."""
        return 4 * np.pi * self.height_m(rows, cols) / wavelength_m


def draw_surface(rng: np.random.Generator, bow_m: float) -> SurfaceBow:
    """Random mix whose largest |height| over the panel is ``bow_m`` × U(0.7, 1)."""
    c = rng.normal(size=4) * np.array([1.0, 0.5, 0.5, 0.5])
    peak = np.abs(SurfaceBow(tuple(c)).height_m(65, 65)).max()  # type: ignore[arg-type]
    c *= bow_m * rng.uniform(0.7, 1.0) / peak
    return SurfaceBow(tuple(float(v) for v in c))  # type: ignore[arg-type]
