"""The drift monitor's settings (:mod:`labctl.runner.drift`), apart from it so that the command
line can show their defaults without importing the runner (torch)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DriftSettings:
    """How often and against what the response is checked, and what counts as moved.

    The default costs ``inputs / (every_batches · batch_size + inputs)`` of the frames: 2.4 % at the
    runner's default batch of 32 (8 reference inputs every 320 inputs), plus 3 · 8 + 3 = 27 inputs'
    frames (each per channel group: three staggered captures of the references) and 4 shutter-dark
    frames at the start."""

    every_batches: int = 10  # 0: no checks
    inputs: int = 8  # reference inputs: the first training inputs of the readout-scale fit
    gain_tolerance: float = 0.01  # relative gain change that is logged and corrected, at least (and 4 standard errors)
    residual_limit: float = 0.02  # what a gain fit leaves beyond the capture noise (of the channel's RMS readout): beyond, stop

    def __post_init__(self) -> None:
        if self.every_batches < 0 or self.inputs < 1:
            raise ValueError(f"drift checks every {self.every_batches} batch(es) on {self.inputs} input(s): "
                             "expected every_batches >= 0 (0: off) and inputs >= 1")
        if not (self.gain_tolerance > 0 and self.residual_limit > 0):
            raise ValueError(f"drift thresholds {self}: expected gain_tolerance > 0 and residual_limit > 0")

    @property
    def enabled(self) -> bool:
        return self.every_batches > 0
