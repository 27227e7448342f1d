"""The Fourier SLM's phase as a trained quantity: bounded where the panel fringes, so that no
gradient step carries a pixel across its 0/2π boundary; free where it does not.

A phase SLM shows phases in [0, 2π) through its phase table, one branch of its response
(:func:`calibration.slm_phase.lut_from_curve`). On an ideal panel 0 and 2π are the same light, so a
phase could be trained as a free real number and wrapped. On a real panel the liquid crystal's
fringing field smooths the *addressed* values over neighbouring pixels
(:func:`labctl.optics.propagation.fringing_blur`): a pixel stepped from 6.27 to 6.29 rad is addressed
as 0.006 rad, a 2π cliff among its neighbours that the fringing turns into a ramp through every
phase. No gradient predicts that change, and Adam moves every pixel each step, so some always cross:
on the simulated 0.7-px panel the loss of a data-free fit rose under Adam, and the optimised export
of an SCLC student read chance (benchmarks/optical_parity.md).

Parametrised as ``φ = low + (high − low)·sigmoid(θ)``, over the span of phases the panel's levels
show without wrapping (:func:`span_of`, nearly [0, 2π)), the phase stays on one branch and the
model is smooth in θ: a pixel may approach the boundary, never jump it. Where a wrap sits is chosen by the start (a
blazed ramp keeps its flybacks), which is what the panel shows anyway. On an ideal panel (no
fringing measured) the bound only hinders: pixels that would wrap harmlessly pile up at 0 and 2π
instead (a 4-channel student on the ideal test bench: 16 % of its pixels within 0.2 rad of the
boundary against 7 % free, and a noisy bench's drift checks then read its references as changed
in shape), so there the phase stays free (:class:`MaskPhase`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from labctl.optics.errors import OpticsModelError

if TYPE_CHECKING:
    from labctl.optics.layout import OpticalLayout

#: starting phases are kept this fraction of the span inside it: the logit of its ends is infinite,
#: and on the sigmoid's flat tails a pixel would barely move
START_MARGIN = 0.02
#: a trained phase restored into a model (an older checkpoint, an in-situ result) moves by at most
#: this fraction of the span (6e-4 rad, a fortieth of an 8-bit gray level)
RESTORE_MARGIN = 1e-4
#: the whole circle: for phases that are not rounded to a panel's levels
FULL_SPAN = (0.0, 2 * math.pi)


def span_of(levels: torch.Tensor) -> tuple[float, float]:
    """The phases (low, high) that round to one of ``levels`` (sorted, in [0, 2π)) without wrapping:
    :func:`labctl.optics.quantise.round_to_levels` rounds around the circle, so a phase in the top
    half-step above the last level is shown as the first one, a 2π cliff. The span ends at the
    midpoint between the last level and the first one + 2π (and inside [0, 2π))."""
    first, last = float(levels[0]), float(levels[-1])
    midpoint = (last + first + 2 * math.pi) / 2
    return max(0.0, midpoint - 2 * math.pi), min(2 * math.pi, midpoint) - 1e-5


def phase_from_logits(logits: torch.Tensor, span: tuple[float, float] = FULL_SPAN) -> torch.Tensor:
    """The addressed phase of trained ``logits``: radians within ``span`` (float32 rounds logits past
    about ±17 to its ends)."""
    low, high = span
    return low + (high - low) * torch.sigmoid(logits)


def logits_from_phase(phase: torch.Tensor, margin: float = START_MARGIN, span: tuple[float, float] = FULL_SPAN) -> torch.Tensor:
    """Logits whose phase is ``phase`` (any real radians, wrapped; a phase past one end of the span
    is the other end's level, and starts there), kept ``margin`` (a fraction of the span) inside it."""
    low, high = span
    wrapped = torch.remainder(phase, 2 * math.pi)
    # outside the span: the other end's level (a half-step below the first level or above the last)
    wrapped = torch.where(wrapped >= high, wrapped - 2 * math.pi, torch.where(wrapped < low, wrapped + 2 * math.pi, wrapped))
    fraction = ((wrapped - low) / (high - low)).clamp(margin, 1 - margin)
    return torch.log(fraction) - torch.log1p(-fraction)


class MaskPhase(nn.Module):
    """A trained phase mask, radians, any shape: ``value`` holds logits (:func:`phase_from_logits`
    over ``span``, the phases the panel's levels show without wrapping: :func:`span_of`) when
    ``bounded`` (a panel with fringing), the phase itself otherwise. Calling it gives the phase; the
    caller rounds it as the panel shows it."""

    def __init__(self, phase: torch.Tensor, bounded: bool, margin: float = START_MARGIN,
                 span: tuple[float, float] = FULL_SPAN) -> None:
        super().__init__()
        self.bounded = bounded
        self.span = span
        self.value = nn.Parameter(self.stored(phase.detach().float(), bounded, margin, span))

    @classmethod
    def for_layout(cls, phase: torch.Tensor, layout: OpticalLayout) -> MaskPhase:
        """The trained phase of a mask shown on ``layout``'s panel: bounded to its levels' span where its
        calibration measured fringing, free where not (the module's docstring says why)."""
        return cls(phase, bounded=layout.fringing_sigma_px > 0, span=span_of(layout.quantisation_levels()))

    @staticmethod
    def stored(phase: torch.Tensor, bounded: bool, margin: float = START_MARGIN, span: tuple[float, float] = FULL_SPAN) -> torch.Tensor:
        """What ``value`` holds for ``phase`` (radians)."""
        return logits_from_phase(phase, margin, span) if bounded else phase.clone()

    def forward(self) -> torch.Tensor:
        return phase_from_logits(self.value, self.span) if self.bounded else self.value

    @torch.no_grad()
    def set(self, phase: torch.Tensor, margin: float = START_MARGIN) -> None:
        """Hold ``phase`` (radians, ``value``'s shape), within ``margin`` of the span's ends when bounded."""
        if tuple(phase.shape) != tuple(self.value.shape):
            raise OpticsModelError(f"a phase of shape {tuple(phase.shape)} for a mask of shape {tuple(self.value.shape)}")
        self.value.copy_(self.stored(phase.to(self.value), self.bounded, margin, self.span))
