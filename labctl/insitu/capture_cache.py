"""Frames captured through the bench for fine-tuning, cached in HDF5 so a second pass costs no bench time.

A cache holds, per (mask, exposure), the camera frames of chosen data-set inputs. Frames are stored
raw (uint16, gzip), so that a better registration or camera calibration can be applied later
without capturing again. A cache made with another mask or exposure is a different group in the file.

Layout::

    /<key>/indices     (n,) i8   data-set indices, in the order captured
    /<key>/frames      (n, rows, cols) u2, gzip
    /<key> attrs       mask_sha256, exposure_s, split
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import h5py
import numpy as np


class CaptureCacheError(RuntimeError):
    """The cache file is unreadable or holds frames of another camera."""


def capture_key(split: str, mask_gray: np.ndarray, exposure_s: float) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(mask_gray).tobytes()).hexdigest()[:16]
    return f"{split}-{digest}-{exposure_s:.6e}"


class CaptureCache:
    def __init__(self, path: str | Path, frame_shape: tuple[int, int]) -> None:
        self.path = Path(path)
        self.frame_shape = tuple(frame_shape)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._h5 = h5py.File(self.path, "a")
        except OSError as exc:
            raise CaptureCacheError(f"{self.path}: cannot open the capture cache ({exc})") from None
        self.hits = 0
        self.misses = 0

    def close(self) -> None:
        if self._h5.id.valid:
            self._h5.close()

    def __enter__(self) -> CaptureCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _group(self, key: str) -> h5py.Group:
        if key in self._h5:
            group = self._h5[key]
            if tuple(group["frames"].shape[1:]) != self.frame_shape:
                raise CaptureCacheError(
                    f"{self.path}: cached frames are {group['frames'].shape[1:]}, this camera gives {self.frame_shape}"
                )
            return group
        group = self._h5.create_group(key)
        group.create_dataset("indices", shape=(0,), maxshape=(None,), dtype="i8")
        group.create_dataset(
            "frames", shape=(0, *self.frame_shape), maxshape=(None, *self.frame_shape), dtype="u2",
            chunks=(1, *self.frame_shape), compression="gzip", compression_opts=4, shuffle=True,
        )
        return group

    def cached(self, key: str) -> dict[int, int]:
        """Data-set index → row in the cache for ``key``."""
        if key not in self._h5:
            return {}
        return {int(i): row for row, i in enumerate(self._h5[key]["indices"][...])}

    def get_or_capture(self, key: str, indices: np.ndarray, capture) -> np.ndarray:
        """Frames (n, rows, cols) uint16 for ``indices``; ``capture(missing_indices)`` → frames for the rest."""
        indices = np.asarray(indices, dtype=np.int64)
        if key in self._h5:
            self._group(key)  # checks the cached frames' shape against this camera
        rows = self.cached(key)
        missing = np.array([i for i in indices if int(i) not in rows], dtype=np.int64)
        self.hits += int(indices.size - missing.size)
        self.misses += int(missing.size)
        if missing.size:
            frames = np.asarray(capture(missing))
            if frames.shape != (missing.size, *self.frame_shape):
                raise CaptureCacheError(f"capture gave frames of shape {frames.shape}, expected {(missing.size, *self.frame_shape)}")
            group = self._group(key)
            start = group["indices"].shape[0]
            group["indices"].resize((start + missing.size,))
            group["frames"].resize((start + missing.size, *self.frame_shape))
            group["frames"][start:] = frames.astype(np.uint16)
            group["indices"][start:] = missing  # indices last: a frame counts as cached once complete
            self._h5.flush()
            rows.update({int(i): start + k for k, i in enumerate(missing)})
        group = self._h5[key]
        order = np.array([rows[int(i)] for i in indices])
        sort = np.argsort(order)
        out = np.empty((indices.size, *self.frame_shape), dtype=np.uint16)
        out[sort] = group["frames"][order[sort]]
        return out
