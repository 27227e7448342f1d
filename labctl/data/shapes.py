"""Embedded segmentation set: procedurally drawn filled shapes (foreground) among outline shapes and
strokes of the same brightness (background), on a shaded, noisy background.

Telling a filled shape from an outline needs context, which a nonlinear network gets easily and a
linear filter followed by a detector does not: the gap KD is meant to close.
"""

from __future__ import annotations

import numpy as np
import torch

from labctl.data.dataset import Dataset, Split

DEFAULT_SIZE = 64
N_TRAIN, N_TEST = 1600, 400
#: generation seeds: fixed, independent of any training seed
_TRAIN_SEED, _TEST_SEED = 101, 202


def _shape_mask(kind: int, yy: np.ndarray, xx: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    cy, cx = rng.uniform(0.15, 0.85, 2) * size
    r = rng.uniform(0.08, 0.2) * size
    if kind == 0:  # ellipse
        a, b = r, r * rng.uniform(0.6, 1.4)
        return ((yy - cy) / a) ** 2 + ((xx - cx) / b) ** 2 <= 1
    if kind == 1:  # rotated rectangle
        t = rng.uniform(0, np.pi)
        u = (xx - cx) * np.cos(t) + (yy - cy) * np.sin(t)
        v = -(xx - cx) * np.sin(t) + (yy - cy) * np.cos(t)
        return (np.abs(u) <= r) & (np.abs(v) <= r * rng.uniform(0.5, 1.0))
    # triangle: inside three half-planes
    angles = rng.uniform(0, 2 * np.pi) + np.array([0, 2 * np.pi / 3, 4 * np.pi / 3])
    py, px = cy + r * 1.3 * np.sin(angles), cx + r * 1.3 * np.cos(angles)
    inside = np.ones_like(yy, dtype=bool)
    for i in range(3):
        j = (i + 1) % 3
        cross = (px[j] - px[i]) * (yy - py[i]) - (py[j] - py[i]) * (xx - px[i])
        inside &= cross >= 0
    return inside


def _outline(mask: np.ndarray, width: int) -> np.ndarray:
    interior = mask.copy()
    for _ in range(width):
        interior = interior & np.roll(interior, 1, 0) & np.roll(interior, -1, 0) & np.roll(interior, 1, 1) & np.roll(interior, -1, 1)
    return mask & ~interior


def draw_shapes(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images (float in [0, 1], (n, size, size)) and binary masks of the filled shapes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    images = np.empty((n, size, size))
    masks = np.zeros((n, size, size), dtype=np.int64)
    for k in range(n):
        g = rng.uniform(-1, 1, 2)
        img = rng.uniform(0.1, 0.3) + 0.1 * (g[0] * yy + g[1] * xx) / size
        for _ in range(rng.integers(1, 4)):  # foreground: filled shapes
            m = _shape_mask(int(rng.integers(0, 3)), yy, xx, rng, size)
            img = np.where(m, rng.uniform(0.55, 0.95), img)
            masks[k] |= m
        for _ in range(rng.integers(1, 3)):  # distractors: outlines and strokes, not in the mask
            m = _outline(_shape_mask(int(rng.integers(0, 3)), yy, xx, rng, size), width=max(1, size // 32))
            img = np.where(m, rng.uniform(0.55, 0.95), img)
            masks[k] &= ~m
        images[k] = img + rng.normal(0, 0.04, (size, size))
    return np.clip(images, 0, 1), masks


def load_shapes_dataset(size: int = DEFAULT_SIZE, spec: str = "shapes") -> Dataset:
    def split(n: int, seed: int) -> Split:
        images, masks = draw_shapes(n, size, seed)
        x = torch.from_numpy((images * 255).round().astype(np.uint8))[:, None]
        return Split(x, torch.from_numpy(masks))

    return Dataset(spec, "segmentation", 2, split(N_TRAIN, _TRAIN_SEED), split(N_TEST, _TEST_SEED))
