"""Detection: what the sensor behind the optical front end records of the complex output field."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

DetectionMode = Literal["intensity", "field"]
DETECTION_MODES: tuple[str, ...] = ("intensity", "field")


class Detector(nn.Module):
    """``intensity``: |E|² per channel, as a camera measures (the default, and the only physical one
    for a plain camera). ``field``: real and imaginary parts as separate channels, as coherent
    (holographic) detection would give; linear in E, used by the all-linear baseline."""

    def __init__(self, mode: DetectionMode = "intensity") -> None:
        super().__init__()
        if mode not in DETECTION_MODES:
            raise ValueError(f"detection must be one of {DETECTION_MODES}; got {mode!r}")
        self.mode = mode

    def channels(self, field_channels: int) -> int:
        return field_channels if self.mode == "intensity" else 2 * field_channels

    def forward(self, field: torch.Tensor) -> torch.Tensor:
        if self.mode == "intensity":
            # through the real view: its backward is one multiply, where .real/.imag each backpropagate
            # through a zero-filled complex gradient
            return torch.view_as_real(field.resolve_conj()).square().sum(-1)
        return torch.cat([field.real, field.imag], dim=1)
