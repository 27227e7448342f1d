"""Noll-normalised Zernike polynomials (Noll 1988): the basis of a pupil wavefront, shared by the
simulated bench's hidden aberrations and the in-situ twin that fits them."""

from __future__ import annotations

from math import factorial

import numpy as np

from labctl.optics.errors import OpticsModelError


def noll_to_nm(j: int) -> tuple[int, int]:
    """Radial order n and azimuthal frequency m of Noll index ``j`` (1: piston, 4: defocus, 11: spherical);
    m < 0 is the sin(|m|θ) term."""
    if j < 1:
        raise OpticsModelError(f"Noll indices start at 1; got {j}")
    n = int((-1 + np.sqrt(8 * (j - 1) + 1)) / 2)
    p = j - n * (n + 1) // 2
    k = n % 2
    m = ((p + k) // 2) * 2 - k
    if m != 0 and j % 2 == 1:
        m = -m
    return n, m


def zernike(j: int, rho: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Noll-normalised Zernike polynomial ``j`` at polar pupil coordinates (unit RMS over ρ ≤ 1)."""
    n, m = noll_to_nm(j)
    am = abs(m)
    radial = np.zeros_like(rho)
    for k in range((n - am) // 2 + 1):
        c = (-1) ** k * factorial(n - k) / (factorial(k) * factorial((n + am) // 2 - k) * factorial((n - am) // 2 - k))
        radial = radial + c * rho ** (n - 2 * k)
    if m == 0:
        return np.sqrt(n + 1) * radial
    angular = np.cos(am * theta) if m > 0 else np.sin(am * theta)
    return np.sqrt(2 * (n + 1)) * radial * angular
