"""How an SCLC export will read, judged before the bench shows it: training images through the
calibrated twin, and the back end's accuracy on those readouts against the digital model's on the
same images.

The data-free encoding's region error does not tell this. On the full Fashion-MNIST set the
iterative export's region error (0.13) was the one it had on a 6 000-image subset, yet it read 3.6
points below its digital model through the simulated bench where on the subset it read 0.8 below
(benchmarks/optical_parity.md). Through the twin, about half of that loss is the input modulator's
leak: it lights the whole modulator, so what the phase-only mask passes around the optical axis
lands on every tile as one coherent field; the rest is the encoding's error inside the tiles'
region. The weakest channels, high-pass ones that stay dark over the flat parts of an image, read
worst (correlation with the digital detection down to 0.33). The twin carries the calibrated panel
and leak, so its readouts show that loss (6.4 points on 1 024 scored training images there, 1.2 on
the subset) where the region error cannot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from labctl.models.optics_aware import ideal_affine
from labctl.optics.channel_scale import fit_channel_scale
from labctl.optics.errors import OpticsModelError
from labctl.optics.layout import OpticalLayout, modulator_amplitudes
from labctl.optics.readout import channel_points
from labctl.optics.twin import FourFTwin

#: images read through the twin at a time (bounds the memory a check takes)
BATCH = 64


@dataclass(frozen=True)
class TwinCheck:
    """Accuracies (fractions) on ``images`` scored training images: the digital student's and its back
    end's on twin readouts of the export (as many other images fitted the per-channel scale)."""

    images: int
    digital: float
    optical: float

    @property
    def loss(self) -> float:
        """Points of accuracy (fraction) the optics lose against the digital model."""
        return self.digital - self.optical

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def twin_check(model: nn.Module, layout: OpticalLayout, phases: Sequence[np.ndarray], images: np.ndarray,
               targets: np.ndarray) -> TwinCheck:
    """Read ``images`` ((N, 1, n, n) in [0, 1], training images the export was not fitted on) through
    the twin of ``layout`` (its calibrated panel and input leak) showing one phase mask per channel
    group; fit the per-channel gain and offset on the first half, as the runner does on the bench,
    and score the back end on the second half against ``model``'s own predictions' accuracy there."""
    if len(phases) != layout.channel_groups:
        raise OpticsModelError(f"{len(phases)} phase masks for a layout of {layout.channel_groups} channel group(s)")
    if len(images) < 2 or len(images) != len(targets):
        raise OpticsModelError(f"a twin check needs at least 2 images with one target each; got {len(images)} and {len(targets)}")
    twin = FourFTwin(layout)
    points = channel_points(layout, ideal_affine(layout))
    at = [points[: len(layout.group_channels(g))] for g in range(layout.channel_groups)]
    shown = [torch.from_numpy(np.asarray(p, dtype=np.float32)) for p in phases]
    amplitudes = torch.from_numpy(modulator_amplitudes(images, layout))
    half = len(images) // 2
    with torch.no_grad():
        readout = torch.cat([torch.cat(twin.read_groups(amplitudes[i : i + BATCH], shown, at), dim=1)
                             for i in range(0, len(images), BATCH)])
        detected = model.detected(torch.from_numpy(images))
        scale = fit_channel_scale(readout[:half], detected[:half])
        optical = model.back(scale.apply(readout[half:])).argmax(1).numpy()
        digital = model.back(detected[half:]).argmax(1).numpy()
    truth = np.asarray(targets[half:])
    return TwinCheck(images=len(truth), digital=float((digital == truth).mean()), optical=float((optical == truth).mean()))
