"""Lens aberrations beyond defocus: a Zernike wavefront over the 4f system's pupil.

In a 4f system the Fourier plane is the pupil: the aberrations of both lenses, referred to it
(isoplanatic approximation: the same wavefront for every field point), multiply the Fourier-plane
transmission by ``exp(i·W(ρ, θ))``, ``W = Σ_j c_j·Z_j`` with ``Z_j`` the Noll-normalised Zernike
polynomials (unit RMS over the unit disk; Noll 1988). ρ is the Fourier-plane radius over the pupil
radius, here the half-diagonal of the SLM (the lenses' clear aperture just covers the panel). The
twin models defocus (Noll 4) only; astigmatism (5, 6), coma (7, 8), trefoil (9, 10), spherical (11)
and higher terms lie outside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from labctl.optics.sampling import SimulationGrid
from labctl.optics.zernike import noll_to_nm as noll_to_nm, zernike


@dataclass(frozen=True)
class ZernikeAberration:
    """The hidden wavefront: Noll indices and their coefficients (radians of phase)."""

    noll: tuple[int, ...]
    coefficients_rad: tuple[float, ...]

    @property
    def rms_rad(self) -> float:
        """RMS wavefront error over the pupil (the terms are orthonormal)."""
        return float(np.sqrt(np.sum(np.square(self.coefficients_rad))))

    def wavefront_rad(self, rho: np.ndarray, theta: np.ndarray) -> np.ndarray:
        return sum((c * zernike(j, rho, theta) for j, c in zip(self.noll, self.coefficients_rad)), np.zeros_like(rho))

    def pupil_factor(self, grid: SimulationGrid) -> torch.Tensor:
        """``exp(i·W)`` over the Fourier-plane samples of ``grid`` (FFT order), complex64."""
        geo = grid.geometry
        y, x = grid.fourier_positions_m()
        radius_m = 0.5 * geo.fourier_pitch_m * float(np.hypot(geo.rows, geo.cols))
        yy, xx = np.broadcast_arrays(y / radius_m, x / radius_m)
        w = self.wavefront_rad(np.hypot(xx, yy), np.arctan2(yy, xx))
        return torch.polar(torch.ones(w.shape), torch.from_numpy(w).float())


def draw_aberration(rng: np.random.Generator, noll: tuple[int, ...], rms_rad: float) -> ZernikeAberration:
    """Coefficients of random signs and sizes whose RMS is ``rms_rad`` × U(0.7, 1)."""
    c = rng.normal(size=len(noll))
    c *= rms_rad * rng.uniform(0.7, 1.0) / np.sqrt(np.sum(c**2))
    return ZernikeAberration(tuple(noll), tuple(float(v) for v in c))
