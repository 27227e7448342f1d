"""Physics-aware training (Wright et al., Nature 601:549, 2022) of the Fourier mask and back end.

Forward pass on the bench: the current mask is written to the SLM and the batch is captured; the
back end reads the bench's readouts. Backward pass through the refined twin: the readout that enters
the back end is ``twin + (bench − twin).detach()``, whose value is the bench's and whose gradient with
respect to the phase is the twin's. The updated mask is written to the SLM before the next batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from labctl.insitu.twin_fit import ChannelAffine
from labctl.optics.phase_parameter import RESTORE_MARGIN, MaskPhase, span_of
from labctl.optics.quantise import round_to_levels
from labctl.optics.twin import FourFTwin
from labctl.training.kd import kd_loss


@dataclass
class PATConfig:
    #: each a pass over a fresh share of the training set (:class:`labctl.insitu.session.FineTuneOptions`); on the
    #: lab bench (fashion-mini, seed 0) 3 epochs left the optical accuracy 1.2 points under the digital one, 6 none
    epochs: int = 6
    batch_size: int = 32
    phase_lr: float = 0.02
    back_lr: float = 5e-4
    kd_temperature: float = 4.0
    kd_alpha: float = 0.5
    seed: int = 0


@dataclass
class PATStep:
    """One batch: what was shown, what the bench gave (in the back end's units), the loss."""

    loss: float
    bench_frames: int


class PhysicsAwareTrainer:
    """Holds the mask phase and back end being trained; ``step`` runs one batch on the bench.

    ``bench_readout(indices, phase)`` writes ``phase`` to the SLM, captures the inputs ``indices``
    and returns their readouts in the back end's units (camera calibration, registration and
    channel scale applied). ``twin_to_bench`` maps the twin's readouts onto those units.
    ``phase_levels``: the phases the panel shows through the session's phase table (sorted, in
    [0, 2π); :meth:`OpticalLayout.quantisation_levels`, or ``table_phase_levels`` of the table): the
    twin sees the mask rounded to those, as the panel shows it. ``lc_offset(phase)``: the multiples
    of 2π the liquid crystal adds to the shown phase (the table's gray branch,
    :func:`labctl.insitu.twin_fit.lc_phase_offset`), which the twin's fringing sees. The phase is
    trained bounded to the levels' span (:mod:`labctl.optics.phase_parameter`): the refined twin
    always models fringing.
    """

    def __init__(
        self,
        phase: torch.Tensor,
        back_end: nn.Module,
        twin: FourFTwin,
        points: torch.Tensor,
        oversample: int,
        twin_to_bench: ChannelAffine,
        phase_levels: torch.Tensor,
        config: PATConfig,
        lc_offset: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        # the start is the mask shown
        self.mask_phase = MaskPhase(phase, True, RESTORE_MARGIN, span_of(torch.as_tensor(phase_levels)))
        self.back_end = back_end
        self.twin = twin
        self.points = points
        self.oversample = oversample
        self.twin_to_bench = twin_to_bench
        self.phase_levels = torch.as_tensor(phase_levels, dtype=torch.float64)
        self.lc_offset = lc_offset
        self.config = config
        self.optimiser = torch.optim.Adam(
            [{"params": [self.mask_phase.value], "lr": config.phase_lr}, {"params": list(back_end.parameters()), "lr": config.back_lr}]
        )

    def shown_phase(self) -> torch.Tensor:
        """The phase the SLM shows: wrapped and rounded to the panel's levels (straight-through gradient)."""
        return round_to_levels(self.mask_phase(), self.phase_levels)

    def phase(self) -> torch.Tensor:
        """The phase being trained, radians, before rounding to the panel's levels."""
        with torch.no_grad():
            return self.mask_phase().clone()

    def phase_for_slm(self) -> np.ndarray:
        with torch.no_grad():
            return np.mod(self.shown_phase().numpy().astype(np.float64), 2 * math.pi)

    def step(
        self,
        amplitudes: torch.Tensor,
        labels: torch.Tensor,
        teacher_logits: torch.Tensor | None,
        bench_readout: Callable[[np.ndarray], torch.Tensor],
    ) -> PATStep:
        measured = bench_readout(self.phase_for_slm())  # forward pass on the bench
        self.back_end.train()
        shown = self.shown_phase()
        if self.lc_offset is not None:
            shown = shown + torch.from_numpy(self.lc_offset(shown.detach().numpy().astype(np.float64))).to(shown)
        simulated = self.twin_to_bench(self.twin.read(amplitudes, shown, self.points, self.oversample))
        hybrid = simulated + (measured - simulated).detach()
        logits = self.back_end(hybrid)
        if teacher_logits is None:
            loss = torch.nn.functional.cross_entropy(logits, labels)
        else:
            loss = kd_loss(logits, teacher_logits, labels, self.config.kd_temperature, self.config.kd_alpha)
        self.optimiser.zero_grad()
        loss.backward()
        self.optimiser.step()
        self.back_end.eval()
        return PATStep(float(loss.detach()), int(amplitudes.shape[0]))
