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
and leak, so its readouts show that loss (5.6 points on 1 792 scored training images there, 0.7 on
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
from labctl.optics.quantise import round_to_levels
from labctl.optics.readout import channel_points
from labctl.optics.twin import FourFTwin

#: images read through the twin at a time (what a check holds in memory besides the fit's)
BATCH = 64
#: training images the per-channel gain and offset are fitted on (the runner fits 64 on the bench)
FIT_IMAGES = 256


@dataclass(frozen=True)
class TwinCheck:
    """The task's headline ``metric`` (classification: accuracy; segmentation: foreground IoU pooled
    over pixels; fractions) on ``images`` scored training images: the digital student's and its back
    end's on twin readouts of the export (other images fitted the per-channel scale)."""

    images: int
    digital: float
    optical: float
    metric: str = "accuracy"

    @property
    def loss(self) -> float:
        """What the optics lose against the digital model (a fraction)."""
        return self.digital - self.optical

    def to_dict(self) -> dict[str, float | str]:
        return asdict(self)


def _counts(logits: torch.Tensor, truth: torch.Tensor, task: str) -> torch.Tensor:
    """(right, out of): correct images and images; or foreground intersection and union pixels."""
    if task == "classification":
        return torch.tensor([int((logits.argmax(1) == truth).sum()), truth.numel()])
    predicted, true = logits.argmax(1) > 0, truth > 0
    return torch.tensor([int((predicted & true).sum()), int((predicted | true).sum())])


def twin_check(model: nn.Module, layout: OpticalLayout, phases: Sequence[np.ndarray], images: np.ndarray,
               targets: np.ndarray, task: str = "classification") -> TwinCheck:
    """Read ``images`` ((N, 1, n, n) in [0, 1], training images the export was not fitted on) through
    the twin of ``layout`` (its calibrated panel and input leak) showing one phase mask per channel
    group, as the SLM's phase levels round it; fit the per-channel gain and offset on the first
    ``FIT_IMAGES`` (at most half), as the runner does on the bench, and score the back end on the
    rest against ``model``'s own there, by ``task``'s headline metric (as ``labctl.training.metrics``
    counts it)."""
    if len(phases) != layout.channel_groups:
        raise OpticsModelError(f"{len(phases)} phase masks for a layout of {layout.channel_groups} channel group(s)")
    if len(images) < 2 or len(images) != len(targets):
        raise OpticsModelError(f"a twin check needs at least 2 images with one target each; got {len(images)} and {len(targets)}")
    twin = FourFTwin(layout)
    points = channel_points(layout, ideal_affine(layout))
    at = [points[: len(layout.group_channels(g))] for g in range(layout.channel_groups)]
    levels = layout.quantisation_levels()
    shown = [round_to_levels(torch.from_numpy(np.asarray(p, dtype=np.float64)), levels).float() for p in phases]

    def read(start: int, stop: int) -> torch.Tensor:
        amplitudes = torch.from_numpy(modulator_amplitudes(images[start:stop], layout))
        return torch.cat(twin.read_groups(amplitudes, shown, at), dim=1)

    fit = min(FIT_IMAGES, len(images) // 2)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            readout = torch.cat([read(i, min(i + BATCH, fit)) for i in range(0, fit, BATCH)])
            scale = fit_channel_scale(readout, model.detected(torch.from_numpy(images[:fit])))
            digital = optical = torch.zeros(2, dtype=torch.long)
            for i in range(fit, len(images), BATCH):
                truth = torch.as_tensor(np.asarray(targets[i : i + BATCH]))
                digital = digital + _counts(model(torch.from_numpy(images[i : i + BATCH])), truth, task)
                optical = optical + _counts(model.back(scale.apply(read(i, min(i + BATCH, len(images))))), truth, task)
    finally:
        model.train(was_training)
    (right_d, of_d), (right_o, of_o) = digital.tolist(), optical.tolist()
    # segmentation with no foreground predicted or true: the metric's convention, a perfect score
    return TwinCheck(images=len(images) - fit, digital=right_d / of_d if of_d else 1.0, optical=right_o / of_o if of_o else 1.0,
                     metric="accuracy" if task == "classification" else "iou")
