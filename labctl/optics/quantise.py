"""Phase quantisation as the panel shows it.

A phase SLM reaches its phases through a phase table (target phase → gray level). An uncalibrated
(linear) table gives ``2**bits`` uniform levels per 2π, but a real panel's response reaches more than
2π over its gray range, so a calibrated table uses only the gray levels that fall within one 2π —
205–246 of 256 on the simulated panels — and not evenly spaced. A model that trains a mask for that
panel rounds to those levels, not to 256 uniform ones.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from labctl.optics.errors import OpticsModelError

TWO_PI = 2 * math.pi


def table_phase_levels(gray: np.ndarray) -> tuple[float, ...]:
    """The phases (sorted, in [0, 2π)) a panel shows through a phase table ``gray``.

    ``gray[..., k]`` is the gray level written for target phase ``2π·k/K``; each gray level the table
    uses shows the circular mean of the targets it stands for. A regional table ``(R, C, K)`` gives
    the levels of its centre region (the others differ by the panel's few-percent variation).
    """
    table = np.asarray(gray)
    if table.ndim == 3:
        table = table[table.shape[0] // 2, table.shape[1] // 2]
    if table.ndim != 1 or table.size < 2:
        raise OpticsModelError(f"a phase table is (K,) or (R, C, K) gray levels; got shape {np.shape(gray)}")
    k = table.size
    sums = np.zeros(int(table.max()) + 1, dtype=complex)
    np.add.at(sums, table.astype(np.int64), np.exp(2j * np.pi * np.arange(k) / k))
    phases = np.mod(np.angle(sums[np.unique(table)]), TWO_PI)
    phases[phases >= TWO_PI] = 0.0  # np.mod of a tiny negative angle rounds up to 2π itself
    return tuple(float(v) for v in np.unique(phases))


def uniform_levels(bit_depth: int) -> tuple[float, ...]:
    """``2**bit_depth`` uniform levels per 2π: what a linear (uncalibrated) table shows."""
    return tuple(TWO_PI * k / 2**bit_depth for k in range(2**bit_depth))


def round_to_levels(phase: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Wrap to [0, 2π) and round to the nearest of ``levels`` (sorted, in [0, 2π); nearest counted
    around the circle); the gradient passes straight through the rounding (straight-through estimator)."""
    wrapped = torch.remainder(phase, TWO_PI)
    levels = levels.to(wrapped)
    ring = torch.cat([levels[-1:] - TWO_PI, levels, levels[:1] + TWO_PI])
    upper = torch.searchsorted(ring, wrapped.detach().contiguous()).clamp(1, ring.numel() - 1)
    lo, hi = ring[upper - 1], ring[upper]
    nearest = torch.where(wrapped.detach() - lo <= hi - wrapped.detach(), lo, hi)
    return wrapped + (torch.remainder(nearest, TWO_PI) - wrapped).detach()
