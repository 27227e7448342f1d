"""Detection: what the sensor behind the optical front end records of the complex output field."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from labctl.models.errors import ModelConfigError

DetectionMode = Literal["intensity", "field"]
DETECTION_MODES: tuple[str, ...] = ("intensity", "field")


class Detector(nn.Module):
    """``intensity``: |E|² per channel, as a camera measures (the default, and the only physical one
    for a plain camera). ``field``: real and imaginary parts as separate channels, as coherent
    (holographic) detection would give; linear in E, used by the all-linear baseline."""

    def __init__(self, mode: DetectionMode = "intensity") -> None:
        super().__init__()
        if mode not in DETECTION_MODES:
            raise ModelConfigError(f"detection must be one of {DETECTION_MODES}; got {mode!r}")
        self.mode = mode

    def channels(self, field_channels: int) -> int:
        return field_channels if self.mode == "intensity" else 2 * field_channels

    def forward(self, field: torch.Tensor) -> torch.Tensor:
        if self.mode == "intensity":
            return SquareLaw.apply(field)
        return torch.cat([field.real, field.imag], dim=1)


class SquareLaw(torch.autograd.Function):
    """|E|² with its gradient written out (2·E·g in PyTorch's complex convention). Autograd through
    ``E.real ** 2 + E.imag ** 2`` builds two zero-filled complex gradients and adds them; this one
    multiply made the intensity step of a training batch about twice as fast."""

    @staticmethod
    def forward(ctx, field: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(field)
        return field.real.square() + field.imag.square()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (field,) = ctx.saved_tensors
        # The gradient arrives channels-last from the back end; multiplying it by the contiguous
        # field took 6 × longer than copying it to contiguous first and then multiplying.
        return field * (2 * grad.contiguous())
