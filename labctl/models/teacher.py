"""Nonlinear teachers: a plain CNN for classification and a small U-Net for segmentation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from labctl.models.errors import ModelConfigError


@dataclass(frozen=True)
class TeacherConfig:
    """``depth`` conv blocks (``convs`` × [3×3 conv, BatchNorm, ReLU], then a 2×2 max-pool while the
    map is > 4 px), ``width`` channels in the first block, doubled per block up to 4×; global average
    pooling and an MLP head. Any input size from 28 to 512 px works."""

    task: Literal["classification"]
    in_channels: int
    size: int
    num_classes: int
    depth: int = 3
    width: int = 32
    hidden: int = 128
    convs: int = 1
    kind: Literal["teacher"] = "teacher"

    def __post_init__(self) -> None:
        if self.depth < 1 or self.width < 1 or self.convs < 1:
            raise ModelConfigError(f"teacher depth, width and convolutions per block must be >= 1; got {self.depth}, {self.width}, {self.convs}")

    def block_channels(self) -> list[int]:
        return [self.width * 2 ** min(i, 2) for i in range(self.depth)]


class TeacherCNN(nn.Module):
    def __init__(self, config: TeacherConfig) -> None:
        super().__init__()
        self.config = config
        blocks: list[nn.Module] = []
        c_in, n = config.in_channels, config.size
        for c_out in config.block_channels():
            layers: list[nn.Module] = []
            for _ in range(config.convs):
                layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
                c_in = c_out
            if n > 4:
                layers.append(nn.MaxPool2d(2))
                n //= 2
            blocks.append(nn.Sequential(*layers))
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, config.hidden), nn.ReLU(), nn.Linear(config.hidden, config.num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@dataclass(frozen=True)
class UNetConfig:
    """A small U-Net: ``levels`` down/up steps, ``width`` channels at the top, doubled per level."""

    task: Literal["segmentation"]
    in_channels: int
    size: int
    num_classes: int
    levels: int = 2
    width: int = 16
    kind: Literal["teacher"] = "teacher"


def _double_conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
    )


class UNetTeacher(nn.Module):
    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = config
        widths = [config.width * 2**i for i in range(config.levels + 1)]
        self.down = nn.ModuleList([_double_conv(config.in_channels, widths[0])])
        self.down.extend(_double_conv(widths[i], widths[i + 1]) for i in range(config.levels))
        self.up = nn.ModuleList(_double_conv(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(config.levels)))
        self.out = nn.Conv2d(widths[0], config.num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.down[0](x)]
        for block in self.down[1:]:
            skips.append(block(F.max_pool2d(skips[-1], 2)))
        y = skips.pop()
        for block in self.up:
            skip = skips.pop()
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = block(torch.cat([y, skip], dim=1))
        return self.out(y)
