"""The bounded phase parameter: it round-trips, never leaves (0, 2π), and lets a gradient fit a
phase through a fringing panel where a free phase wrapped inside the model does not."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from labctl.optics.phase_parameter import RESTORE_MARGIN, START_MARGIN, MaskPhase, logits_from_phase, phase_from_logits, span_of
from labctl.optics.propagation import fringing_blur
from labctl.optics.quantise import round_to_levels, uniform_levels


def test_round_trip_inside_the_margin_and_wrapped() -> None:
    phase = torch.tensor([0.5, 3.0, 6.0, 3.0 + 2 * math.pi, -1.0], dtype=torch.float64)
    back = phase_from_logits(logits_from_phase(phase))
    assert torch.allclose(back, torch.remainder(phase, 2 * math.pi), atol=1e-9)
    edges = phase_from_logits(logits_from_phase(torch.tensor([0.0, 1e-3, 2 * math.pi - 1e-3], dtype=torch.float64)))
    assert torch.allclose(edges, torch.tensor([START_MARGIN, START_MARGIN, 1 - START_MARGIN], dtype=torch.float64) * 2 * math.pi)
    huge = phase_from_logits(torch.tensor([-1e4, 1e4], dtype=torch.float64))
    assert 0 <= float(huge.min()) and float(huge.max()) <= 2 * math.pi


def _shown(phase: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """The field a 100 %-fill panel shows for an addressed phase in [0, 2π) (fringing on the addressed values)."""
    blurred = fringing_blur(phase[None], sigma_px)[0]
    return torch.polar(torch.ones_like(blurred), blurred)


STEPS = 100


@pytest.mark.parametrize("bounded", [True, False])
def test_adam_through_fringing_lowers_the_loss_only_when_bounded(bounded: bool) -> None:
    """Refine a phase near a target one, fitting the far field the target gives through a 0.7-px
    fringing panel. A free phase wrapped inside the model is pushed across 0/2π by every step: its
    loss rises."""
    rng = np.random.default_rng(0)
    target_phase = torch.from_numpy(rng.uniform(0, 2 * np.pi, (64, 64)))
    target = torch.fft.fft2(_shown(target_phase, 0.7), norm="ortho").abs()
    start = torch.remainder(target_phase + torch.from_numpy(rng.normal(0, 0.3, (64, 64))), 2 * np.pi)
    theta = (logits_from_phase(start) if bounded else start.clone()).requires_grad_()
    optimiser = torch.optim.Adam([theta], lr=0.05)

    def loss() -> torch.Tensor:
        phase = phase_from_logits(theta) if bounded else torch.remainder(theta, 2 * math.pi)
        return (torch.fft.fft2(_shown(phase, 0.7), norm="ortho").abs() - target).square().mean()

    first = float(loss())
    for _ in range(STEPS):
        optimiser.zero_grad()
        value = loss()
        value.backward()
        optimiser.step()
    last = float(loss())
    if bounded:
        assert last < 0.2 * first
    else:
        assert last > first


@pytest.mark.parametrize("levels", [uniform_levels(8), (0.05, 1.0, 3.0, 6.27), (0.0, 2.0, 4.0, 5.9)])
def test_a_bounded_phase_never_rounds_across_the_wrap(levels: tuple[float, ...]) -> None:
    """Rounding to the panel's levels goes around the circle: the span keeps a bounded phase, even
    saturated in float32, on the levels' one branch (lowest logits: first level, highest: last)."""
    table = torch.tensor(levels, dtype=torch.float64)
    logits = torch.tensor([-1e4, -30.0, -5.0, 0.0, 5.0, 30.0, 1e4])
    shown = round_to_levels(phase_from_logits(logits, span_of(table)), table)
    assert float(shown[0]) == pytest.approx(levels[0]) and float(shown[-1]) == pytest.approx(levels[-1])
    assert torch.all(torch.diff(shown) >= 0)  # monotone: no jump from the last level back to the first
    phase = torch.tensor([levels[-1], 2 * math.pi - 1e-3, levels[0], 1e-3])  # a restored mask shows what it showed
    mask = MaskPhase(phase, True, RESTORE_MARGIN, span_of(table))
    assert torch.allclose(round_to_levels(mask(), table), round_to_levels(phase, table).float(), atol=1e-5)
