"""Twin refinement: fit the twin's free parameters to frames the bench captured for known inputs.

The camera pose starts from the registration (:func:`labctl.optics.geometry.pose_from_affine`);
defocus, a phase-scale error of the phase table, a residual pose correction and a per-channel gain
and offset are then fitted by gradient descent so that the twin's tile readouts match the bench's.
The fitted twin is what physics-aware training sends its gradients through.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from labctl.optics.readout import read_channels
from labctl.optics.twin import FourFTwin


#: Adam step per parameter, in its own units (µm of shift or defocus, radians, log-scale, fraction)
STEP = {"shift": 0.5, "rotation": 1e-3, "log_scale": 1e-3, "defocus_um": 10.0, "phase_scale": 0.005, "log_gain": 0.01}


@dataclass
class TwinFitConfig:
    steps: int = 150
    batch_size: int = 16
    parameters: tuple[str, ...] = ("shift", "rotation", "log_scale", "defocus_um", "phase_scale")
    seed: int = 0


@dataclass
class ChannelAffine:
    """bench readout ≈ gain · twin readout + offset, per channel (torch, differentiable in the input)."""

    gain: torch.Tensor  # (C,)
    offset: torch.Tensor  # (C,)

    def __call__(self, readout: torch.Tensor) -> torch.Tensor:
        return readout * self.gain[None, :, None, None] + self.offset[None, :, None, None]

    @classmethod
    def fit(cls, twin_readout: torch.Tensor, bench_readout: torch.Tensor) -> ChannelAffine:
        gains, offsets = [], []
        for c in range(twin_readout.shape[1]):
            x = twin_readout[:, c].reshape(-1).double()
            y = bench_readout[:, c].reshape(-1).double()
            design = torch.stack([x, torch.ones_like(x)], dim=1)
            solution = torch.linalg.lstsq(design, y[:, None]).solution[:, 0]
            gains.append(solution[0])
            offsets.append(solution[1])
        return cls(torch.stack(gains).float(), torch.stack(offsets).float())


def twin_readout(twin: FourFTwin, amplitudes: torch.Tensor, phase: torch.Tensor, points: torch.Tensor, oversample: int, chunk: int = 32) -> torch.Tensor:
    """Twin readouts (B, C, n, n), without gradients, in chunks."""
    with torch.no_grad():
        return torch.cat([read_channels(twin(amplitudes[i : i + chunk], phase), points, oversample) for i in range(0, len(amplitudes), chunk)])


def match(a: torch.Tensor, b: torch.Tensor) -> float:
    """Correlation of two readout sets over all channels and pixels (1 = identical up to scale)."""
    return float(np.corrcoef(a.detach().reshape(-1).numpy(), b.detach().reshape(-1).numpy())[0, 1])


def refine_twin(
    twin: FourFTwin,
    amplitudes: torch.Tensor,
    phase: torch.Tensor,
    bench_readout: torch.Tensor,
    points: torch.Tensor,
    oversample: int,
    config: TwinFitConfig = TwinFitConfig(),
    on_step: Callable[[int, float], None] = lambda step, loss: None,
) -> tuple[ChannelAffine, dict[str, float]]:
    """Fit ``twin`` in place to ``bench_readout`` (B, C, n, n) of ``amplitudes`` under ``phase``.

    Returns the per-channel affine that maps the fitted twin's readouts onto the bench's, and a
    summary (match before and after, fitted parameters).
    """
    phase = phase.detach()
    before = twin_readout(twin, amplitudes, phase, points, oversample)
    summary = {"match_before": match(before, bench_readout)}
    twin.fit_parameters(config.parameters)
    optimiser = torch.optim.Adam([{"params": [getattr(twin, name)], "lr": STEP[name]} for name in config.parameters])
    generator = torch.Generator().manual_seed(config.seed)
    n = amplitudes.shape[0]
    scale = bench_readout.abs().mean(dim=(0, 2, 3), keepdim=True) + 1e-12
    for step in range(config.steps):
        idx = torch.randint(0, n, (min(config.batch_size, n),), generator=generator)
        twin_out = read_channels(twin(amplitudes[idx], phase), points, oversample)
        target = bench_readout[idx] / scale
        affine = ChannelAffine.fit(twin_out.detach(), target)  # best gain/offset for the current twin
        loss = (affine(twin_out) - target).square().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        on_step(step, float(loss.detach()))
    twin.fit_parameters(())
    after = twin_readout(twin, amplitudes, phase, points, oversample)
    summary["match_after"] = match(after, bench_readout)
    summary.update(twin.describe())
    return ChannelAffine.fit(after, bench_readout), summary
