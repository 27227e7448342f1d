"""Frames captured through the bench for fine-tuning, cached in HDF5 so a second pass costs no bench time.

A cache holds, per (data set, split, mask, exposure), the camera frames of chosen inputs. Frames are
stored raw (uint16, gzip), so that a better registration or camera calibration can be applied later
without capturing again. Another data set, mask or exposure is another group in the file.

Layout::

    /<key>/indices     (n,) i8   data-set indices, in the order captured (−1: not written)
    /<key>/frames      (n, rows, cols) u2, gzip
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import h5py
import numpy as np
from drivers.errors import LabctlError


class CaptureCacheError(LabctlError, RuntimeError):
    """The cache file is unreadable or holds frames of another camera."""


def capture_key(data_spec: str, split: str, mask_gray: np.ndarray, exposure_s: float) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(mask_gray).tobytes()).hexdigest()[:16]
    data = hashlib.sha256(data_spec.encode()).hexdigest()[:8]
    return f"{data}-{split}-{digest}-{exposure_s:.6e}"


class CaptureCache:
    def __init__(self, path: str | Path, frame_shape: tuple[int, int], chunk: int = 64) -> None:
        self.path = Path(path)
        self.chunk = chunk  # frames captured and stored at a time: a failure loses at most one chunk
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
        group.create_dataset("indices", shape=(0,), maxshape=(None,), dtype="i8", fillvalue=-1)
        group.create_dataset(
            "frames", shape=(0, *self.frame_shape), maxshape=(None, *self.frame_shape), dtype="u2",
            chunks=(1, *self.frame_shape), compression="gzip", compression_opts=4, shuffle=True,
        )
        return group

    def cached(self, key: str) -> dict[int, int]:
        """Data-set index → row in the cache for ``key`` (rows beyond the stored frames are ignored)."""
        if key not in self._h5:
            return {}
        group = self._h5[key]
        stored = group["frames"].shape[0]
        return {int(i): row for row, i in enumerate(group["indices"][...]) if row < stored and i >= 0}

    def _store(self, key: str, indices: np.ndarray, frames: np.ndarray) -> dict[int, int]:
        """Append frames, then their indices: a write cut short leaves frames without an index, or
        unwritten indices (fill value −1): both are ignored, never an index paired with a wrong frame."""
        if frames.shape != (indices.size, *self.frame_shape):
            raise CaptureCacheError(f"capture gave frames of shape {frames.shape}, expected {(indices.size, *self.frame_shape)}")
        group = self._group(key)
        start = group["indices"].shape[0]
        group["frames"].resize((start + indices.size, *self.frame_shape))
        group["frames"][start:] = frames.astype(np.uint16)
        self._h5.flush()
        group["indices"].resize((start + indices.size,))
        group["indices"][start:] = indices
        self._h5.flush()
        return {int(i): start + k for k, i in enumerate(indices)}

    def get_or_capture(self, key: str, indices: np.ndarray, capture) -> np.ndarray:
        """Frames (n, rows, cols) uint16 for ``indices``; ``capture(missing_indices)`` → frames for the
        rest, called chunk by chunk, each chunk stored as soon as it is captured."""
        indices = np.asarray(indices, dtype=np.int64)
        if key in self._h5:
            self._group(key)  # checks the cached frames' shape against this camera
        rows = self.cached(key)
        missing = np.array([i for i in indices if int(i) not in rows], dtype=np.int64)
        self.hits += int(indices.size - missing.size)
        self.misses += int(missing.size)
        if missing.size:
            for start in range(0, missing.size, self.chunk):
                part = missing[start : start + self.chunk]
                rows.update(self._store(key, part, np.asarray(capture(part))))
        group = self._h5[key]
        order = np.array([rows[int(i)] for i in indices])
        sort = np.argsort(order)
        out = np.empty((indices.size, *self.frame_shape), dtype=np.uint16)
        out[sort] = group["frames"][order[sort]]
        return out
