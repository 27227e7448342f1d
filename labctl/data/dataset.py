"""In-memory data sets: images as uint8 tensors, targets as class labels or per-pixel masks.

Images stay uint8 until a batch is drawn (a 60 000-image IDX set is 47 MB, not 188 MB).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from labctl.data.errors import DataError

Task = Literal["classification", "segmentation"]


@dataclass(frozen=True)
class Split:
    """``images``: uint8 (N, C, H, W); ``targets``: int64 (N,) labels or (N, H, W) masks."""

    images: torch.Tensor
    targets: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise DataError(f"images must be uint8 (N, C, H, W); got {self.images.dtype} {tuple(self.images.shape)}")
        if self.targets.shape[0] != self.images.shape[0]:
            raise DataError(f"{self.images.shape[0]} images but {self.targets.shape[0]} targets")

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, indices: torch.Tensor) -> Split:
        return Split(self.images[indices], self.targets[indices])

    def batches(
        self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Float images in [0, 1] and targets, ``batch_size`` at a time."""
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            yield self.images[idx].float() / 255.0, self.targets[idx]


@dataclass(frozen=True)
class Dataset:
    spec: str
    task: Task
    num_classes: int
    train: Split
    test: Split

    @property
    def name(self) -> str:
        return self.spec

    @property
    def channels(self) -> int:
        return self.train.images.shape[1]

    @property
    def size(self) -> int:
        """Image side in pixels (square images)."""
        return self.train.images.shape[-1]

    def resized(self, size: int) -> Dataset:
        if size == self.size:
            return self
        return Dataset(self.spec, self.task, self.num_classes, resize_split(self.train, size), resize_split(self.test, size))

    def describe(self) -> str:
        return (
            f"{self.spec}: {self.task}, {self.num_classes} classes, {self.channels}x{self.size}x{self.size} px, "
            f"{len(self.train)} train / {len(self.test)} test"
        )


def resize_split(split: Split, size: int, chunk: int = 4096) -> Split:
    """Square-resize images (bilinear, antialiased) and masks (nearest), in chunks to bound memory."""
    images = []
    for start in range(0, len(split), chunk):
        x = split.images[start : start + chunk].float()
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        images.append(x.round().clamp(0, 255).to(torch.uint8))
    targets = split.targets
    if targets.ndim == 3:
        targets = F.interpolate(targets[:, None].float(), size=(size, size), mode="nearest")[:, 0].long()
    return Split(torch.cat(images), targets)


def fixed_split(n: int, test_fraction: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Train/test indices from a fixed permutation (independent of the training seed)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_test = int(round(n * test_fraction))
    return order[n_test:], order[:n_test]
