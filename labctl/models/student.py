"""The SCLC student: linear spectral front end → detector → electronic back end; and the all-linear
baseline (field detection, linear back end), a model with no nonlinearity at all."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from labctl.models.backend import ClassifierBackEnd, SegmentationBackEnd, check_backend_conv
from labctl.models.detection import Detector
from labctl.models.spectral import SpectralStack


@dataclass(frozen=True)
class StudentConfig:
    """``channels`` / ``pool``: per spectral layer, output channels and spectral-pooling factor.
    ``detection``: intensity (camera, default) or field. ``backend_pool``: side of the pooled map the
    classifier's MLP reads. ``linear_backend``: no ReLU in the back end (all-linear baseline).
    ``kernel_support``: 0 (default) leaves each spectral filter free (a kernel as wide as the
    image, convolved circularly); K > 0 (odd) limits every layer's spatial kernel to K × K pixels
    and makes the front end the linear convolution a 4f system computes (no wrap at the border, no
    spill past ``(L·(K − 1) + 1) // 2`` pixels around the image: see
    :class:`labctl.models.spectral.SpectralStack`)."""

    task: Literal["classification", "segmentation"]
    in_channels: int
    size: int
    num_classes: int
    channels: list[int] = field(default_factory=lambda: [16])
    pool: list[int] = field(default_factory=list)  # empty: no spectral pooling
    detection: Literal["intensity", "field"] = "intensity"
    backend_pool: int = 7
    hidden: int = 128
    linear_backend: bool = False
    backend_conv: int = 0  # channels of the electronic 3x3 convolutions in a classifier back end; 0: none
    backend_conv_layers: int = 1  # how many of them, each followed by 2x2 max pooling
    init_kernel: int = 5
    kind: Literal["sclc", "linear"] = "sclc"
    kernel_support: int = 0

    def __post_init__(self) -> None:
        check_backend_conv(self.task, self.backend_conv, self.backend_conv_layers)


def default_kernel_support(task: str, size: int, layers: int = 1, pooled: bool = False) -> int:
    """The spatial kernel limit a classification SCLC student gets unless told otherwise: the odd
    number ``2·(size // 6) + 1``, about a third of the image side (9 px at 28 px), for one spectral
    layer without spectral pooling; 0 (free filters) for anything else (a segmentation student, whose
    output is the whole image; several layers or pooling, where the limit is unmeasured).

    Why: free filters are kernels as wide as the image that the digital model convolves circularly
    and the 4f system linearly, spilling into the neighbouring camera tiles. On fashion-mini
    (``benchmarks/optical_parity.md``, seeds 1 and 2) the limited student's optimised export read
    0.5 point below its digital accuracy on the calibrated bench, the free one's 2.2, with the same
    digital accuracy (85.5 and 85.55 %)."""
    if task != "classification" or layers != 1 or pooled:
        return 0
    support = 2 * (size // 6) + 1
    return support if 3 <= support < size else 0


def all_linear_config(task: Literal["classification", "segmentation"], in_channels: int, size: int, num_classes: int) -> StudentConfig:
    """The all-linear baseline: one spectral layer, field detection, linear back end."""
    return StudentConfig(
        task, in_channels, size, num_classes, channels=[16], pool=[1], detection="field", linear_backend=True, kind="linear"
    )


class SCLCStudent(nn.Module):
    def __init__(self, config: StudentConfig) -> None:
        super().__init__()
        self.config = config
        pool = list(config.pool) or [1] * len(config.channels)
        self.front = SpectralStack(
            config.in_channels, config.size, list(config.channels), pool, config.init_kernel, config.kernel_support
        )
        self.detector = Detector(config.detection)
        detected = self.detector.channels(self.front.out_channels)
        if config.task == "classification":
            self.back: nn.Module = ClassifierBackEnd(
                detected, config.num_classes, min(config.backend_pool, self.front.out_size), config.hidden, config.linear_backend,
                config.backend_conv, config.backend_conv_layers,
            )
        else:
            self.back = SegmentationBackEnd(detected, config.num_classes, config.hidden, config.size, config.linear_backend)

    def detected(self, x: torch.Tensor) -> torch.Tensor:
        """What the sensor records: detector(front end(x))."""
        return self.detector(self.front(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.back(self.detected(x))
