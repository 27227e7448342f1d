"""Mechanical vignetting of the relay: off-axis bundles clipped by a second aperture.

A field point at height h sends a circular bundle through the relay's stop; at a lens away from the
stop that bundle is displaced by s ∝ h, and the fraction passing an equal circular aperture is the
overlap of two circles of radius a whose centres are s apart (the lens-shaped area):
``V(u) = (2/π)·(acos u − u·√(1 − u²))``, u = s/(2a) ≤ 1. The relay's axis may sit a little off the
4f axis. The camera's flat field divides out only the part that varies pixel to pixel, not this
smooth fall-off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def overlap_fraction(u: np.ndarray) -> np.ndarray:
    """Transmitted fraction of a circular bundle displaced by 2a·u from an equal circular aperture."""
    u = np.clip(u, 0.0, 1.0)
    return (2 / np.pi) * (np.arccos(u) - u * np.sqrt(1 - u**2))


@dataclass(frozen=True)
class Vignetting:
    u_per_m: float  # bundle displacement over 2a, per metre of field height
    center_m: tuple[float, float]  # (x, y) of the relay's axis in the output plane

    def relative_illumination(self, x_m: np.ndarray, y_m: np.ndarray) -> np.ndarray:
        return overlap_fraction(self.u_per_m * np.hypot(x_m - self.center_m[0], y_m - self.center_m[1]))


def draw_vignetting(rng: np.random.Generator, corner_loss: float, half_diagonal_m: float) -> Vignetting:
    """Loss at the sensor's corner height ``corner_loss`` × U(0.8, 1); axis within 5 % of the half-diagonal."""
    target = 1 - corner_loss * rng.uniform(0.8, 1.0)
    lo, hi = 0.0, 1.0
    for _ in range(60):  # overlap_fraction decreases from 1 to 0 over u in [0, 1]
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if overlap_fraction(np.array(mid)) > target else (lo, mid)
    center = tuple(float(c) for c in rng.uniform(-0.05, 0.05, size=2) * half_diagonal_m)
    return Vignetting(u_per_m=lo / half_diagonal_m, center_m=center)  # type: ignore[arg-type]
