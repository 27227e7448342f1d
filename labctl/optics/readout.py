"""Reading the channel tiles out of a camera frame: one function for the twin and for the bench.

Channel ``c`` of an optical student is a copy of the image displaced to its tile on the camera (a
linear phase ramp on the Fourier SLM). Its ``(n, n)`` readout samples the camera at the image of each
input-image pixel's centre: the pixel's position on the input modulator, displaced by the tile
offset (expressed in modulator pixels), mapped to camera pixels by an affine. The twin uses the
nominal affine of the design geometry; a bench run uses the calibrated registration. Nothing else
differs, so the back end reads the same thing in both.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from scipy import sparse

from labctl.optics.layout import OpticalLayout
from labctl.optics.errors import OpticsModelError

#: Sub-samples per image pixel side used by both the twin and the bench readout.
DEFAULT_OVERSAMPLE = 2


def tile_offsets_px(layout: OpticalLayout) -> np.ndarray:
    """(C, 2) displacement (x, y) of each channel's copy, in input-modulator pixels.

    The 4f images the input inverted and magnified, output = −M·input, so an output-plane shift
    ``s`` is an input-plane displacement ``−s / M``.
    """
    scale = -1.0 / (layout.geometry.magnification * layout.input_pitch_m)
    return np.array([[sx * scale, sy * scale] for sy, sx in layout.tile_shifts_m()])


def channel_points(layout: OpticalLayout, affine: np.ndarray, oversample: int = DEFAULT_OVERSAMPLE,
                   warp: Callable[[np.ndarray], np.ndarray] | None = None) -> torch.Tensor:
    """Camera-pixel positions (x, y), shape (C, n·o, n·o, 2), of the image pixels of every channel.

    ``affine``: 2×3, input-modulator pixel (col, row) → camera pixel (col, row). With ``oversample``
    o > 1 each image pixel is sampled at o×o points spread over its footprint (averaged by
    :func:`read_channels`), which evens out the camera's pixel grid. ``warp``: camera points (..., 2)
    → where the camera really sees them (a registration's lens distortion), applied after the affine.
    """
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (2, 3) or not np.all(np.isfinite(affine)):
        raise OpticsModelError(f"the readout affine must be a finite 2x3 matrix; got shape {affine.shape}")
    if oversample < 1:
        raise OpticsModelError(f"oversample must be >= 1; got {oversample}")
    n, s = layout.image_size, layout.image_scale
    sub = ((np.arange(oversample) + 0.5) / oversample - 0.5) * s  # sub-point offsets within a pixel
    centres = (np.arange(n) * s + (s - 1) / 2)[:, None] + sub[None, :]  # (n, o) modulator px
    cols = (layout.image_col + centres).reshape(-1)
    rows = (layout.image_row + centres).reshape(-1)
    xx, yy = np.meshgrid(cols, rows)  # (n·o, n·o)
    points = []
    for dx, dy in tile_offsets_px(layout):
        px, py = xx + dx, yy + dy
        cam_x = affine[0, 0] * px + affine[0, 1] * py + affine[0, 2]
        cam_y = affine[1, 0] * px + affine[1, 1] * py + affine[1, 2]
        points.append(np.stack([cam_x, cam_y], axis=-1))
    out = np.stack(points)
    if warp is not None:
        out = np.asarray(warp(out), dtype=np.float64)
        if out.shape[-1] != 2 or not np.all(np.isfinite(out)):
            raise OpticsModelError("the readout warp must map camera points (..., 2) to finite camera points")
    return torch.from_numpy(out).float()


def read_channels(frames: torch.Tensor, points: torch.Tensor, oversample: int = DEFAULT_OVERSAMPLE) -> torch.Tensor:
    """Bilinear samples of ``frames`` (B, H, W) at ``points`` (C, n·o, n·o, 2) → (B, C, n, n).

    The o×o sub-samples of each image pixel are averaged. Points outside the frame read zero.
    Differentiable in ``frames`` and in ``points``.
    """
    b, h, w = frames.shape
    c, big_n = points.shape[0], points.shape[1]
    if big_n % oversample:
        raise OpticsModelError(f"{big_n} sample points per side is not a multiple of oversample {oversample}")
    grid = torch.stack([2 * points[..., 0] / (w - 1) - 1, 2 * points[..., 1] / (h - 1) - 1], dim=-1)
    grid = grid.reshape(1, c * big_n, big_n, 2).to(frames.dtype).expand(b, -1, -1, -1)
    sampled = F.grid_sample(frames[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    sampled = sampled.reshape(b * c, 1, big_n, big_n)
    if oversample > 1:
        sampled = F.avg_pool2d(sampled, oversample)
    n = big_n // oversample
    return sampled.reshape(b, c, n, n)


def bilinear_weights(x: np.ndarray, y: np.ndarray, rows_out: np.ndarray, n_out: int, shape: tuple[int, int],
                     weight: float = 1.0) -> sparse.csr_matrix:
    """(n_out, H·W) sparse matrix: output ``rows_out[k]`` adds ``weight`` × the bilinear sample of an
    (H, W) image at (``x[k]``, ``y[k]``) (pixel coordinates: column, row), as ``grid_sample`` takes it
    with ``align_corners=True`` and zeros outside (each of the four neighbours outside reads zero)."""
    h, w = shape
    x, y, rows_out = (np.asarray(a, dtype=np.float64).reshape(-1) for a in (x, y, rows_out))
    x0, y0 = np.floor(x), np.floor(y)
    rows, cols, vals = [], [], []
    for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
        xi, yi = x0 + dx, y0 + dy
        value = (1 - np.abs(x - xi)) * (1 - np.abs(y - yi)) * weight
        inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h) & (value > 0)
        rows.append(rows_out[inside].astype(np.int64))
        cols.append((yi[inside] * w + xi[inside]).astype(np.int64))
        vals.append(value[inside])
    return sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_out, h * w))


def readout_weights(points: torch.Tensor, camera_shape: tuple[int, int], oversample: int = DEFAULT_OVERSAMPLE) -> sparse.csr_matrix:
    """:func:`read_channels` as a (C·n·n, H·W) sparse matrix (float64): each (channel, pixel) output
    is a fixed weighted sum of at most 4·o² camera pixels (the bilinear weights of its sub-samples,
    averaged)."""
    c, big_n = points.shape[0], points.shape[1]
    if big_n % oversample:
        raise OpticsModelError(f"{big_n} sample points per side is not a multiple of oversample {oversample}")
    n = big_n // oversample
    pts = points.detach().cpu().double().numpy()
    # output row of each sub-sample: channel, pixel row, pixel col
    ci = np.arange(c)[:, None, None]
    ri = (np.arange(big_n) // oversample)[None, :, None]
    qi = (np.arange(big_n) // oversample)[None, None, :]
    out_row = np.broadcast_to(ci * n * n + ri * n + qi, pts.shape[:-1])
    return bilinear_weights(pts[..., 0], pts[..., 1], out_row, c * n * n, camera_shape, 1 / oversample**2)


class ReadoutMatrix:
    """:func:`read_channels` as one precomputed sparse matrix (:func:`readout_weights`): fast for many
    frames at fixed points — a batch of frames is read with one sparse product (scipy's, several
    times faster on the CPU than sampling the frames again for every batch). Same result as
    :func:`read_channels` (zero outside the frame), to float rounding.
    """

    def __init__(self, points: torch.Tensor, camera_shape: tuple[int, int], oversample: int = DEFAULT_OVERSAMPLE) -> None:
        matrix = readout_weights(points, camera_shape, oversample).astype(np.float32)
        self._transposed = matrix.T.tocsr()  # (H·W, C·n·n): frames (B, H·W) @ it
        self.shape = (points.shape[0], points.shape[1] // oversample)
        self.camera_shape = tuple(camera_shape)

    @property
    def pixels_read(self) -> np.ndarray:
        """Bool (H, W): the camera pixels any readout point weighs."""
        return (np.diff(self._transposed.indptr) > 0).reshape(self.camera_shape)

    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        """(B, H, W) → (B, C, n, n) float32."""
        frames = np.asarray(frames, dtype=np.float32)
        b, h, w = frames.shape
        if (h, w) != self.camera_shape:
            raise OpticsModelError(f"frames are {h}x{w}; the readout was built for a {self.camera_shape[0]}x{self.camera_shape[1]} camera")
        c, n = self.shape
        return torch.from_numpy(np.asarray(frames.reshape(b, h * w) @ self._transposed, dtype=np.float32)).reshape(b, c, n, n)
