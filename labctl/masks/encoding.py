"""Phase-only encoding of a complex Fourier-plane mask (the SLM can only delay, not attenuate).

Double-phase encoding (Hsueh & Sawchuk 1978; Maimone et al. 2017): a complex value of amplitude
``a <= 1`` is the mean of two unit phasors, ``a·e^{iφ} = ½(e^{i(φ+θ)} + e^{i(φ−θ)})`` with
``θ = arccos a``. The two phases are interleaved on a checkerboard of SLM pixels. The checkerboard's
error term is modulated to the SLM's highest spatial frequency, so it lands half an output window
away (in both directions) from the wanted image. On a bench whose camera spans about one output
window, with tiles all over it, that copy falls on other tiles.

The error term carries ``1 − a²`` of each pixel's light, so dividing the mask by its peak (most
pixels then have ``a`` well below 1) sends most of the light there: a 32-channel mask of the
default student keeps about a tenth in the wanted term. ``clip_percentile`` divides by a percentile
of the amplitudes instead and clips the few above it to 1 (measured in
``benchmarks/optical_parity.md``: the readout match of a 25-tile mask rose from 0.44 at the peak to
0.69 at the 85th percentile).
"""

from __future__ import annotations

import numpy as np
from drivers.errors import LabctlError


#: how ``labctl export-masks`` makes an SCLC student's complex filters phase only (the first is the
#: default; :mod:`labctl.masks.export` says what each does)
ENCODINGS = ("auto", "iterative", "optimised", "double-phase")


class EncodingError(LabctlError, ValueError):
    """The complex mask cannot be encoded (NaN/inf, all zero)."""


def double_phase(mask: np.ndarray, clip_percentile: float = 100.0) -> tuple[np.ndarray, float]:
    """Phase pattern in [0, 2π) for the complex ``mask`` (rows, cols), and its amplitude scale.

    The mask is divided by the ``clip_percentile`` percentile of its amplitudes first (100: its
    largest amplitude) and amplitudes above 1 are clipped to 1; that scale is returned so that
    intensities can be related back to the unscaled filters (output power falls by ``scale**-2``).
    """
    if not 0 < clip_percentile <= 100:
        raise EncodingError(f"clip_percentile must be within (0, 100]; got {clip_percentile}")
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise EncodingError(f"a Fourier mask must be 2-D; got shape {mask.shape}")
    if not np.all(np.isfinite(mask)):
        raise EncodingError("the complex mask holds NaN or inf")
    peak = float(np.abs(mask).max())
    if peak == 0:
        raise EncodingError("the complex mask is zero everywhere")
    if clip_percentile < 100:
        peak = float(np.percentile(np.abs(mask), clip_percentile)) or peak
    amplitude = np.abs(mask) / peak
    theta = np.arccos(np.clip(amplitude, 0.0, 1.0))
    rows, cols = np.indices(mask.shape)
    sign = np.where((rows + cols) % 2 == 0, 1.0, -1.0)
    phase = np.angle(mask) + sign * theta
    return np.mod(phase, 2 * np.pi), peak
