"""The Fourier SLM's phase as a trained quantity: bounded, so that no gradient step carries a pixel
across the panel's 0/2π boundary.

A phase SLM shows phases in [0, 2π) through its phase table, one branch of its response
(:func:`calibration.slm_phase.lut_from_curve`). On an ideal panel 0 and 2π are the same light, so a
phase could be trained as a free real number and wrapped. On a real panel the liquid crystal's
fringing field smooths the *addressed* values over neighbouring pixels
(:func:`labctl.optics.propagation.fringing_blur`): a pixel stepped from 6.27 to 6.29 rad is addressed
as 0.006 rad, a 2π cliff among its neighbours that the fringing turns into a ramp through every
phase. No gradient predicts that change, and Adam moves every pixel each step, so some always cross:
on the simulated 0.7-px panel the loss of a data-free fit rose under Adam, and the optimised export
of an SCLC student read chance (benchmarks/optical_parity.md).

Parametrised as ``φ = 2π·sigmoid(θ)`` the phase stays inside (0, 2π) and the model is smooth in θ:
a pixel may approach the boundary, never jump it. Where a wrap sits is chosen by the start (a
blazed ramp keeps its flybacks), which is what the panel shows anyway.
"""

from __future__ import annotations

import math

import torch

#: starting phases are kept this fraction of 2π inside (0, 2π): the logit of 0 or 2π is infinite,
#: and on the sigmoid's flat tails a pixel would barely move
START_MARGIN = 0.02
#: a trained phase restored into a model (an older checkpoint, an in-situ result) moves by at most
#: this fraction of 2π (6e-4 rad, a fortieth of an 8-bit gray level)
RESTORE_MARGIN = 1e-4


def phase_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """The addressed phase of trained ``logits``: radians in (0, 2π) (float32 rounds logits past ±17 to the ends)."""
    return 2 * math.pi * torch.sigmoid(logits)


def logits_from_phase(phase: torch.Tensor, margin: float = START_MARGIN) -> torch.Tensor:
    """Logits whose phase is ``phase`` (any real radians; wrapped to [0, 2π) first), kept ``margin``
    (a fraction of 2π) inside the boundary."""
    fraction = (torch.remainder(phase, 2 * math.pi) / (2 * math.pi)).clamp(margin, 1 - margin)
    return torch.log(fraction) - torch.log1p(-fraction)
