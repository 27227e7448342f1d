"""Phase-only encoding of a complex Fourier-plane mask (the SLM can only delay, not attenuate).

Double-phase encoding (Hsueh & Sawchuk 1978; Maimone et al. 2017): a complex value of amplitude
``a <= 1`` is the mean of two unit phasors, ``a·e^{iφ} = ½(e^{i(φ+θ)} + e^{i(φ−θ)})`` with
``θ = arccos a``. The two phases are interleaved on a checkerboard of SLM pixels. The checkerboard's
error term is modulated to the SLM's highest spatial frequency, so it lands half an output window
away from the wanted image (at the corners of the field of view), where no tile is read.
"""

from __future__ import annotations

import numpy as np
from drivers.errors import LabctlError


class EncodingError(LabctlError, ValueError):
    """The complex mask cannot be encoded (NaN/inf, all zero)."""


def double_phase(mask: np.ndarray) -> tuple[np.ndarray, float]:
    """Phase pattern in [0, 2π) for the complex ``mask`` (rows, cols), and its amplitude scale.

    The mask is divided by its largest amplitude first; that scale is returned so that intensities
    can be related back to the unscaled filters (output power falls by ``scale**-2``).
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise EncodingError(f"a Fourier mask must be 2-D; got shape {mask.shape}")
    if not np.all(np.isfinite(mask)):
        raise EncodingError("the complex mask holds NaN or inf")
    peak = float(np.abs(mask).max())
    if peak == 0:
        raise EncodingError("the complex mask is zero everywhere")
    amplitude = np.abs(mask) / peak
    theta = np.arccos(np.clip(amplitude, 0.0, 1.0))
    rows, cols = np.indices(mask.shape)
    sign = np.where((rows + cols) % 2 == 0, 1.0, -1.0)
    phase = np.angle(mask) + sign * theta
    return np.mod(phase, 2 * np.pi), peak
