"""Electronic back ends that read the detected optical channels: BatchNorm, pooling and a small MLP
(ReLU) for classification, as in Xiang et al. (2022); a per-pixel MLP for segmentation.
``linear=True`` drops every nonlinearity (the all-linear baseline)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from labctl.models.errors import ModelConfigError


def check_backend_conv(task: str, channels: int, layers: int) -> None:
    """Refuse a back-end convolution that would be ignored: on a segmentation back end, or layers
    without channels."""
    if channels and task != "classification":
        raise ModelConfigError(f"a back-end convolution is for classification back ends; this student is for {task}")
    if layers != 1 and not channels:
        raise ModelConfigError(f"{layers} back-end convolution layers need back-end convolution channels (backend_conv > 0)")


class AveragePool(nn.Module):
    """Average pooling to ``size`` × ``size``: plain ``k`` × ``k`` pooling where the input side is a
    multiple of ``size`` (the same result as adaptive pooling, and faster: a training step of the
    default Fashion-MNIST student took 130 ms with adaptive pooling, 116 ms with this), adaptive
    pooling otherwise."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows, cols = x.shape[-2:]
        if rows % self.size == 0 and cols % self.size == 0:
            return F.avg_pool2d(x, (rows // self.size, cols // self.size))
        return F.adaptive_avg_pool2d(x, self.size)


class ClassifierBackEnd(nn.Module):
    """BatchNorm → average pooling to ``pool_size`` × ``pool_size`` → Linear → ReLU → Linear.

    ``conv_channels`` > 0 inserts ``conv_layers`` electronic 3×3 convolutions after the pooling, each
    → BatchNorm → ReLU → 2 × 2 max pooling: pooled square-law energies of linear filters cannot
    combine neighbouring features nonlinearly, which is what textures and garment parts need. They
    run at the pooled size, so their cost does not grow with the input image.
    """

    def __init__(
        self, channels: int, num_classes: int, pool_size: int, hidden: int, linear: bool = False, conv_channels: int = 0,
        conv_layers: int = 1,
    ) -> None:
        super().__init__()
        if conv_channels < 0 or conv_layers < 1:
            raise ModelConfigError(
                f"back-end convolution channels must be >= 0 (0: none) and its layers >= 1; got {conv_channels} channels, {conv_layers} layers"
            )
        if conv_channels and linear:
            raise ModelConfigError("a linear back end has no convolution (its ReLU would make it nonlinear)")
        self.norm = nn.BatchNorm2d(channels)
        self.pool = AveragePool(pool_size)
        self.conv: nn.Module = nn.Identity()
        if conv_channels:
            layers: list[nn.Module] = []
            for _ in range(conv_layers):
                layers += [
                    nn.Conv2d(channels, conv_channels, 3, padding=1, bias=False), nn.BatchNorm2d(conv_channels), nn.ReLU(),
                    nn.MaxPool2d(2, ceil_mode=True),
                ]
                channels, pool_size = conv_channels, -(-pool_size // 2)
            self.conv = nn.Sequential(*layers)
        features = channels * pool_size * pool_size
        if linear:
            self.mlp = nn.Sequential(nn.Flatten(), nn.Linear(features, num_classes))
        else:
            self.mlp = nn.Sequential(nn.Flatten(), nn.Linear(features, hidden), nn.ReLU(), nn.Dropout(0.2), nn.Linear(hidden, num_classes))

    def forward(self, detected: torch.Tensor) -> torch.Tensor:
        # Channels-last layout (what oneDNN prefers on a CPU) for BatchNorm, pooling and the
        # convolutions: the same numbers up to float rounding, and on 2 threads a training step of
        # the default Fashion-MNIST student went from 105-110 to 91-97 ms, an evaluation batch from
        # 45 to 31 ms (two copies timed in alternation; max pooling alone was 13 × faster).
        detected = detected.contiguous(memory_format=torch.channels_last)
        return self.mlp(self.conv(self.pool(self.norm(detected))))


class SegmentationBackEnd(nn.Module):
    """BatchNorm → per-pixel MLP (1×1 convolutions) → logits, upsampled to ``out_size`` if the front
    end pooled."""

    def __init__(self, channels: int, num_classes: int, hidden: int, out_size: int, linear: bool = False) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels)
        self.out_size = out_size
        if linear:
            self.mlp = nn.Conv2d(channels, num_classes, 1)
        else:
            self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, num_classes, 1))

    def forward(self, detected: torch.Tensor) -> torch.Tensor:
        logits = self.mlp(self.norm(detected))
        if logits.shape[-1] != self.out_size:
            logits = F.interpolate(logits, size=(self.out_size, self.out_size), mode="bilinear", align_corners=False)
        return logits
