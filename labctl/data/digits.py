"""Embedded classification set: scikit-learn's 8×8 handwritten digits (1797 images, shipped with
scikit-learn, no download), upsampled and framed like MNIST (digit in the central 20/28 of the image)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from labctl.data.dataset import Dataset, Split, fixed_split

DEFAULT_SIZE = 28
#: MNIST puts a 20-pixel digit in a 28-pixel frame; the margin also keeps circular (FFT) convolution
#: from wrapping one edge of the digit onto the other.
_DIGIT_FRACTION = 20 / 28


def load_digits_dataset(size: int = DEFAULT_SIZE, spec: str = "digits") -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0)[:, None]  # (1797, 1, 8, 8) in [0, 1]
    inner = max(8, int(round(size * _DIGIT_FRACTION)))
    x = F.interpolate(images, size=(inner, inner), mode="bicubic", align_corners=False).clamp(0, 1)
    lo = (size - inner) // 2
    x = F.pad(x, (lo, size - inner - lo, lo, size - inner - lo))
    x = (x * 255).round().to(torch.uint8)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    train_idx, test_idx = fixed_split(len(labels), test_fraction=0.2)
    return Dataset(spec, "classification", 10, Split(x[train_idx], labels[train_idx]), Split(x[test_idx], labels[test_idx]))
