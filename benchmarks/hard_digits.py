"""Write a harder, Fashion-MNIST-sized stand-in as IDX files: scikit-learn's digits, each drawn many
times with random affine distortion, elastic warping, stroke-weight change and noise, 28 px.

No public data set can be downloaded here; this set is where a linear optical front end is clearly
weaker than a CNN (deformations are easy for a CNN, hard for one Fourier filter bank). The split
is by source digit: test images are distortions of digits the training set never shows.

    python benchmarks/hard_digits.py OUT_DIR [--copies 12]

then ``--data idx:OUT_DIR``. Last line: a JSON summary.
"""

from __future__ import annotations

import argparse
import gzip
import json
import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


def write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes(), compresslevel=1))


def distort(base: torch.Tensor, copies: int, generator: torch.Generator) -> torch.Tensor:
    """base (N, 1, 28, 28) in [0, 1] → (N·copies, 1, 28, 28) randomly distorted copies."""
    x = base.repeat_interleave(copies, dim=0)
    n = x.shape[0]

    def u(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=generator)

    angle, scale = u(-0.45, 0.45), u(0.75, 1.2)
    shear, tx, ty = u(-0.35, 0.35), u(-0.12, 0.12), u(-0.12, 0.12)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin + shear, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # elastic warp: smooth random displacement field
    disp = torch.randn(n, 2, 7, 7, generator=generator) * 0.08
    disp = F.interpolate(disp, size=(28, 28), mode="bicubic", align_corners=False).permute(0, 2, 3, 1)
    x = F.grid_sample(x, grid + disp, mode="bilinear", padding_mode="zeros", align_corners=False)
    # stroke weight: thicken (max-pool) or thin (erode) a random subset
    thick = F.max_pool2d(x, 3, 1, 1)
    thin = -F.max_pool2d(-x, 3, 1, 1)
    choice = torch.randint(0, 3, (n, 1, 1, 1), generator=generator)
    x = torch.where(choice == 1, thick, torch.where(choice == 2, 0.5 * (x + thin), x))
    contrast = u(0.5, 1.0)[:, None, None, None]
    background = u(0.0, 0.25)[:, None, None, None]
    x = background + (contrast - background) * x + 0.06 * torch.randn(x.shape, generator=generator)
    return x.clamp(0, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--copies", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from labctl.data import load_dataset

    digits = load_dataset("digits")
    g = torch.Generator().manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for prefix, split in (("train", digits.train), ("t10k", digits.test)):
        images = distort(split.images.float() / 255, args.copies, g)
        labels = split.targets.repeat_interleave(args.copies)
        write_idx(args.out / f"{prefix}-images-idx3-ubyte.gz", (images[:, 0] * 255).round().numpy())
        write_idx(args.out / f"{prefix}-labels-idx1-ubyte.gz", labels.numpy())
        sizes[prefix] = len(labels)
    print(json.dumps({"out": str(args.out), **sizes}))


if __name__ == "__main__":
    main()
