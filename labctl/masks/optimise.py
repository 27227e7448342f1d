"""Phase-only encoding by optimisation: find the SLM phase whose camera readouts best match the
collapsed filter bank's, for real images, through the differentiable twin.

Closed-form encodings waste light: double-phase sends most of it into a checkerboard error term
that spreads over the tiles; the kinoform (keep only the phase) distorts the filters' amplitudes.
Here a starting phase (the export passes the data-free iterative encoding,
:mod:`labctl.masks.iterative`) is refined by gradient descent (Adam) on the mismatch between the
twin's tile readouts and the digital detection |h ∗ x|², each normalised per channel, over a set of
training images: aimed at what the back end reads rather than at the field. The phase is trained
bounded where the calibrated panel fringes (:mod:`labctl.optics.phase_parameter`): there a pixel
stepped across 0/2π changes the light in a way no gradient foresaw.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from labctl.optics.layout import OpticalLayout
from labctl.models.spectral import apply_filter_bank
from labctl.optics.phase_parameter import MaskPhase
from labctl.optics.readout import channel_points
from labctl.optics.twin import FourFTwin


@dataclass
class PhaseOptimisation:
    steps: int = 300
    batch_size: int = 16
    lr: float = 0.05
    seed: int = 0


def _normalised(x: torch.Tensor) -> torch.Tensor:
    return x / (x.mean(dim=(0, 2, 3), keepdim=True) + 1e-12)


def readout_match(readout: torch.Tensor, target: torch.Tensor) -> float:
    """Mean over channels of the correlation between readouts and targets (1 = perfect)."""
    r = readout.detach().double()
    t = target.detach().double()
    scores = []
    for c in range(r.shape[1]):
        scores.append(float(np.corrcoef(r[:, c].reshape(-1).numpy(), t[:, c].reshape(-1).numpy())[0, 1]))
    return float(np.mean(scores))


def optimise_phase(
    initial_phase: np.ndarray,
    bank: torch.Tensor,
    layout: OpticalLayout,
    images: torch.Tensor,
    amplitudes: torch.Tensor,
    affine: np.ndarray,
    config: PhaseOptimisation = PhaseOptimisation(),
    on_step: Callable[[int, float], None] = lambda step, loss: None,
    support: int = 0,
) -> tuple[np.ndarray, dict[str, float]]:
    """Refined phase in [0, 2π) and a summary (readout match before and after, on ``images``).

    ``bank`` holds the channels of one mask (at most one frame's tiles; tiles past them stay unread).
    ``support``: the student's collapsed kernel extent when its front end convolves linearly
    (:attr:`labctl.models.spectral.SpectralStack.kernel_extent`), so that the target is the
    student's own detection; 0: the circular convolution of free filters."""
    twin = FourFTwin(layout)
    points = channel_points(layout, affine)[: bank.shape[0]]
    with torch.no_grad():
        target = apply_filter_bank(images, bank, support=support).abs().square()
    phase = MaskPhase.for_layout(torch.tensor(initial_phase, dtype=torch.float32), layout)
    optimiser = torch.optim.Adam(phase.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    n = images.shape[0]

    def match() -> float:
        with torch.no_grad():
            shown = phase()
            readout = torch.cat([twin.read(amplitudes[i : i + 32], shown, points) for i in range(0, n, 32)])
        return readout_match(readout, target)

    before = match()
    for step in range(config.steps):
        idx = torch.randint(0, n, (min(config.batch_size, n),), generator=generator)
        readout = twin.read(amplitudes[idx], phase(), points)
        loss = (_normalised(readout) - _normalised(target[idx])).square().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        on_step(step, float(loss.detach()))
    after = match()
    with torch.no_grad():
        final = phase().numpy().astype(np.float64)
    return np.mod(final, 2 * np.pi), {"match_before": before, "match_after": after}
