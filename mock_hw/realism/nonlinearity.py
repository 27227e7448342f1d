"""Sensor nonlinearity near saturation.

A pixel's conversion gain falls as its photodiode fills (the junction capacitance grows as the
voltage across it drops), so the signal bends below the linear response before the full well: linear
up to a knee e_k, then ``e_k + (FW − e_k)·tanh((e − e_k)/(FW − e_k))``, which leaves the response
continuous with a continuous slope and approaches the full well FW softly. A full-well signal reads
``(FW − e_k)·(1 − tanh 1) ≈ 0.24·(FW − e_k)`` electrons low. The EMVA model the camera calibration fits
is linear up to a hard saturation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

#: 1 − tanh(1): the fraction of (FW − knee) a full-well signal loses
_LOSS_AT_FULL_WELL = 1 - float(np.tanh(1.0))


@dataclass(frozen=True)
class SoftSaturation:
    knee_e: float
    full_well_e: float

    @property
    def loss_at_full_well(self) -> float:
        """Relative signal lost by a full-well exposure."""
        return (self.full_well_e - self.knee_e) * _LOSS_AT_FULL_WELL / self.full_well_e

    def __call__(self, electrons: torch.Tensor) -> torch.Tensor:
        over = electrons > self.knee_e
        if not bool(over.any()):  # most frames: nothing near full well (the response is the identity)
            return electrons
        span = self.full_well_e - self.knee_e
        bent = self.knee_e + span * torch.tanh((electrons - self.knee_e) / span)
        return torch.where(over, bent, electrons)


def draw_nonlinearity(rng: np.random.Generator, loss: float, full_well_e: float) -> SoftSaturation:
    """A knee that loses ``loss`` × U(0.8, 1.2) of a full-well signal."""
    span = min(loss * rng.uniform(0.8, 1.2) / _LOSS_AT_FULL_WELL, 0.95)
    return SoftSaturation(knee_e=full_well_e * (1 - span), full_well_e=full_well_e)
