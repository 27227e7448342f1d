"""Spot finding on camera frames: peaks, centroids, window sums and least-squares affine maps."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from drivers.bench import Bench


def brightest(frame: np.ndarray, smooth_px: float = 1.0, region: np.ndarray | None = None) -> tuple[float, float]:
    """(x, y) of the brightest spot after a light smoothing (robust to single hot pixels); within
    ``region`` (bool, the frame's shape) when given."""
    img = ndimage.gaussian_filter(np.asarray(frame, np.float64), smooth_px) if smooth_px > 0 else frame
    if region is not None:
        img = np.where(region, img, -np.inf)
    row, col = np.unravel_index(int(np.argmax(img)), img.shape)
    return float(col), float(row)


def disc(shape: tuple[int, int], center_xy: tuple[float, float], radius: float) -> np.ndarray:
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    return (cols - center_xy[0]) ** 2 + (rows - center_xy[1]) ** 2 <= radius**2


def centroid(frame: np.ndarray, center_xy: tuple[float, float], radius: float, background: float = 0.0) -> tuple[float, float, float]:
    """Intensity centroid (x, y) and summed signal inside a disc, after subtracting ``background``.

    Negative values (noise below the background) are clipped so they cannot pull the centroid.
    """
    img = np.clip(np.asarray(frame, np.float64) - background, 0.0, None)
    mask = disc(img.shape, center_xy, radius)
    w = img * mask
    total = float(w.sum())
    if total <= 0:
        return float("nan"), float("nan"), 0.0
    rows, cols = np.indices(img.shape)
    return float((w * cols).sum() / total), float((w * rows).sum() / total), total


def refined_centroid(frame: np.ndarray, start_xy: tuple[float, float], radius: float, background: float, steps: int = 3) -> tuple[float, float, float]:
    """Centroid re-centred a few times on its own estimate (converges onto the spot)."""
    x, y = start_xy
    total = 0.0
    for _ in range(steps):
        nx, ny, total = centroid(frame, (x, y), radius, background)
        if not np.isfinite(nx):
            break
        x, y = nx, ny
    return x, y, total


def fit_affine(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares 2×3 affine ``dst ≈ A @ [src, 1]``; returns (A, residual vectors (n, 2))."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    design = np.hstack([src, np.ones((len(src), 1))])
    coef, *_ = np.linalg.lstsq(design, dst, rcond=None)
    affine = coef.T
    return affine, dst - design @ coef


def apply_affine(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, np.float64)
    return points @ affine[:, :2].T + affine[:, 2]


def point_source(bench: Bench, size: int = 1) -> np.ndarray:
    """Input amplitude with one ``size``×``size`` block of full-on pixels at the modulator's centre."""
    rows, cols = bench.input_slm.grid.shape
    amp = np.zeros((rows, cols))
    r0, c0 = rows // 2 - size // 2, cols // 2 - size // 2
    amp[r0 : r0 + size, c0 : c0 + size] = 1.0
    return amp
