"""IDX files in the MNIST / Fashion-MNIST layout: ``train-images-idx3-ubyte``,
``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each optionally
gzipped (``.gz``); the ``train-images.idx3-ubyte`` spelling of some mirrors is accepted too.

Format (big-endian): magic = 0x0000 08 NDIM (08: unsigned bytes), NDIM sizes of 4 bytes, then data.
"""

from __future__ import annotations

import gzip
import math
import struct
from pathlib import Path

import numpy as np
import torch

from labctl.data.dataset import Dataset, Split
from labctl.data.errors import DataFileError

_UBYTE = 0x08


def find_idx_file(directory: Path, prefix: str, kind: str) -> Path:
    """``prefix`` train|t10k, ``kind`` images-idx3|labels-idx1."""
    stem_dash = f"{prefix}-{kind}-ubyte"
    stem_dot = f"{prefix}-{kind.replace('-idx', '.idx')}-ubyte"
    candidates = [directory / (s + ext) for s in (stem_dash, stem_dot) for ext in ("", ".gz")]
    for path in candidates:
        if path.is_file():
            return path
    raise DataFileError(directory, f"no {stem_dash} (or .gz) file; expected the MNIST layout {_LAYOUT}")


_LAYOUT = "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte"


def read_idx(path: Path, expected_ndim: int) -> np.ndarray:
    """Read one IDX file of unsigned bytes with ``expected_ndim`` dimensions."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except OSError as exc:  # includes gzip.BadGzipFile
        raise DataFileError(path, f"cannot read: {exc}") from None
    if len(raw) < 4:
        raise DataFileError(path, f"only {len(raw)} bytes; too short for an IDX header")
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    magic = int.from_bytes(raw[:4], "big")
    expected_magic = (_UBYTE << 8) | expected_ndim
    if zero != 0 or dtype != _UBYTE or ndim != expected_ndim:
        raise DataFileError(
            path, f"bad IDX magic number 0x{magic:08x}; expected 0x{expected_magic:08x} (unsigned bytes, {expected_ndim} dimension(s))"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFileError(path, "truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    n_bytes = math.prod(shape)  # exact: np.prod wraps around in int64 for dimensions a header can claim
    if len(raw) - header != n_bytes:
        raise DataFileError(path, f"header says shape {shape} ({n_bytes} bytes of data) but the file holds {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _split(directory: Path, prefix: str) -> Split:
    image_path = find_idx_file(directory, prefix, "images-idx3")
    label_path = find_idx_file(directory, prefix, "labels-idx1")
    images = read_idx(image_path, 3)
    labels = read_idx(label_path, 1)
    if images.shape[0] == 0 or images.shape[1] == 0:
        raise DataFileError(image_path, f"holds no image pixels (the header says shape {images.shape})")
    if images.shape[1] != images.shape[2]:
        raise DataFileError(image_path, f"images are {images.shape[1]}x{images.shape[2]}; labctl expects square images")
    if images.shape[0] != labels.shape[0]:
        raise DataFileError(label_path, f"{labels.shape[0]} labels but {image_path.name} holds {images.shape[0]} images")
    return Split(torch.from_numpy(images.copy())[:, None], torch.from_numpy(labels.astype(np.int64)))


def load_idx_dataset(directory: Path, spec: str) -> Dataset:
    if not directory.is_dir():
        raise DataFileError(directory, "no such directory (for --data idx:DIR)")
    train, test = _split(directory, "train"), _split(directory, "t10k")
    num_classes = int(max(train.targets.max(), test.targets.max())) + 1
    return Dataset(spec, "classification", num_classes, train, test)
