"""Radial lens distortion of the relay between the 4f output plane and the sensor (Brown–Conrady).

An output-plane point at radius ρ_u from the optical axis (in units of the sensor's half-diagonal)
lands on the sensor at ρ_d = ρ_u·(1 + k1·ρ_u² + k2·ρ_u⁴): k1 < 0 barrel, k1 > 0 pincushion. A camera
pixel at ρ_d therefore sees the output point at ρ_u = D⁻¹(ρ_d) (Newton's method), and collects the
light of an output-plane area scaled by the inverse map's Jacobian, (ρ_u/ρ_d)·dρ_u/dρ_d (the image is
dimmer where it is stretched). An affine registration cannot represent it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RadialDistortion:
    k1: float
    k2: float
    radius_m: float  # the normalising radius: the sensor's half-diagonal in the output plane

    def distort_radius(self, rho_u: np.ndarray) -> np.ndarray:
        """ρ_d for output-plane radii ρ_u (normalised)."""
        r2 = rho_u**2
        return rho_u * (1 + self.k1 * r2 + self.k2 * r2**2)

    def distort_m(self, x_m: np.ndarray, y_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where the output-plane point (x, y) (metres from the axis) lands on the sensor's plane."""
        r2 = (x_m**2 + y_m**2) / self.radius_m**2
        f = 1 + self.k1 * r2 + self.k2 * r2**2
        return x_m * f, y_m * f

    def undistort_m(self, x_m: np.ndarray, y_m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The output-plane point a sensor position (x, y) sees, and the area ratio (inverse map's
        Jacobian) of the light it collects there."""
        rho_d = np.hypot(x_m, y_m) / self.radius_m
        rho_u = rho_d.copy()
        for _ in range(30):
            slope = 1 + 3 * self.k1 * rho_u**2 + 5 * self.k2 * rho_u**4
            if np.any(slope <= 0):
                raise ValueError(f"radial distortion k1={self.k1:g}, k2={self.k2:g} folds over within the sensor")
            rho_u = rho_u - (self.distort_radius(rho_u) - rho_d) / slope
        slope = 1 + 3 * self.k1 * rho_u**2 + 5 * self.k2 * rho_u**4
        ratio = 1 / (1 + self.k1 * rho_u**2 + self.k2 * rho_u**4)  # ρ_u/ρ_d
        return x_m * ratio, y_m * ratio, ratio / slope


def draw_distortion(rng: np.random.Generator, k1: float, k2: float, radius_m: float) -> RadialDistortion:
    """k1, k2 of the signs given and sizes drawn in U(0.7, 1) × the given ones."""
    return RadialDistortion(k1 * rng.uniform(0.7, 1.0), k2 * rng.uniform(0.7, 1.0), radius_m)
