"""Bench readouts onto the model's detection: a gain and offset per channel.

The camera's DN scale is not the twin's power scale (laser power, exposure, losses), so the runner
fits, by least squares on a few training inputs (never the evaluated ones), what maps each channel's
readout onto the student's own detection; the export's twin check fits the same on twin readouts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class ChannelScale:
    """detected ≈ gain · readout + offset, per channel."""

    gain: np.ndarray  # (C,)
    offset: np.ndarray  # (C,)

    def apply(self, readout: torch.Tensor) -> torch.Tensor:
        g = torch.as_tensor(self.gain, dtype=readout.dtype)[None, :, None, None]
        o = torch.as_tensor(self.offset, dtype=readout.dtype)[None, :, None, None]
        return readout * g + o

    def to_dict(self) -> dict[str, list[float]]:
        return {"gain": self.gain.tolist(), "offset": self.offset.tolist()}


def fit_channel_scale(readout: torch.Tensor, detected: torch.Tensor) -> ChannelScale:
    """Least-squares gain and offset per channel mapping bench readouts onto the model's detection."""
    c = readout.shape[1]
    gain, offset = np.empty(c), np.empty(c)
    for k in range(c):
        x = readout[:, k].reshape(-1).double().numpy()
        y = detected[:, k].reshape(-1).double().numpy()
        design = np.stack([x, np.ones_like(x)], axis=1)
        (gain[k], offset[k]), *_ = np.linalg.lstsq(design, y, rcond=None)
    return ChannelScale(gain, offset)
