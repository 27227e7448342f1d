"""Channel readouts straight from the output plane: camera sampling and tile readout as one matrix.

The twin's camera samples the output plane's intensity bilinearly at its pixel centres, and the
readout samples the camera bilinearly at the images of the input pixels (:func:`read_channels`).
Both are fixed linear maps while the camera's pose is, so they compose into one sparse matrix from
the plane's samples to the readouts: the same numbers (to float rounding), without the camera frame
or the two ``grid_sample`` passes and their backward passes (about 13 plane samples per readout on
the default bench).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from scipy import sparse

from labctl.optics.errors import OpticsModelError
from labctl.optics.readout import DEFAULT_OVERSAMPLE, bilinear_weights, readout_weights


class PlaneReadout:
    """``intensity`` (B, R, C) on the plane's grid → readouts (B, channels, n, n), differentiable in it.

    ``camera_x``, ``camera_y``: (H, W) where the camera's pixel centres fall, in plane samples
    (column, row); ``points``: the readout's camera positions, (channels, n·o, n·o, 2)."""

    def __init__(self, camera_x: np.ndarray, camera_y: np.ndarray, plane_shape: tuple[int, int], points: torch.Tensor,
                 oversample: int = DEFAULT_OVERSAMPLE) -> None:
        h, w = camera_x.shape
        camera = bilinear_weights(camera_x, camera_y, np.arange(h * w), h * w, plane_shape)
        matrix = (readout_weights(points, (h, w), oversample) @ camera).tocsr()
        self.shape = (points.shape[0], points.shape[1] // oversample)
        self.plane_shape = tuple(plane_shape)
        self._matrix = _torch_csr(matrix)
        self._transposed = _torch_csr(matrix.T.tocsr())

    def to(self, device: torch.device) -> PlaneReadout:
        """The same readout with its matrices on ``device``."""
        moved = object.__new__(PlaneReadout)
        moved.__dict__.update(self.__dict__)
        moved._matrix, moved._transposed = self._matrix.to(device), self._transposed.to(device)
        return moved

    def __deepcopy__(self, memo: dict) -> PlaneReadout:
        """Itself: a readout is never changed once built (and torch cannot deep-copy its CSR matrices),
        so a copied twin shares it."""
        return self

    def __call__(self, intensity: torch.Tensor) -> torch.Tensor:
        b = intensity.shape[0]
        if tuple(intensity.shape[-2:]) != self.plane_shape:
            raise OpticsModelError(f"intensity on a {tuple(intensity.shape[-2:])} grid; this readout was built for {self.plane_shape}")
        c, n = self.shape
        flat = intensity.reshape(b, -1)
        return _SparseProduct.apply(flat, self._matrix, self._transposed).reshape(b, c, n, n)


def _torch_csr(matrix: sparse.csr_matrix) -> torch.Tensor:
    """The matrix as torch's CSR tensor (its invariants hold: scipy's canonical CSR). Torch calls its
    CSR support beta; what this uses of it (construction, ``.to``, a product with a dense matrix) is
    plain, so that notice is not passed on to the operator."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state", category=UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(matrix.indptr.astype(np.int64)), torch.from_numpy(matrix.indices.astype(np.int64)),
            torch.from_numpy(matrix.data.astype(np.float32)), size=matrix.shape, check_invariants=False,
        )


class _SparseProduct(torch.autograd.Function):
    """``x`` (B, N) → ``x @ Mᵀ`` (B, K) for a fixed sparse ``M``; its gradient is ``g @ M``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, matrix: torch.Tensor, transposed: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        ctx.transposed = transposed
        return (matrix @ x.T).T

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # noqa: ANN001
        return (ctx.transposed @ grad.T).T, None, None
