"""Checksums over record payloads, so that a flipped byte or a hand edit is refused, not used.

Run records get one CRC-32 per row (written with the row, so appending a batch never rereads the
file), one per event and one per frame, and a SHA-256 over their attributes (provenance, readout
scale). Mask files get one SHA-256 over their arrays and attributes. These catch damage and edits
made without labctl; they are not signatures.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def row_crcs(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """CRC-32 of each row over the given columns' bytes, in order (uint32, one per row)."""
    n = arrays[0].shape[0]
    parts = [np.ascontiguousarray(a).reshape(n, -1).view(np.uint8) for a in arrays]
    joined = np.concatenate(parts, axis=1) if parts else np.zeros((n, 0), np.uint8)
    return np.fromiter((zlib.crc32(row.tobytes()) for row in joined), dtype=np.uint32, count=n)


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def attrs_digest(attrs: Mapping[str, Any], skip: Sequence[str] = ()) -> str:
    """SHA-256 (hex) over attribute names and values (HDF5 attrs as h5py returns them)."""
    doc = {key: _plain(attrs[key]) for key in sorted(attrs) if key not in skip}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=repr).encode()).hexdigest()


def arrays_digest(arrays: Sequence[np.ndarray], attrs: Mapping[str, Any]) -> str:
    """SHA-256 (hex) over arrays (dtype, shape, bytes) and then attributes."""
    digest = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        digest.update(f"{a.dtype.str}{a.shape}".encode())
        digest.update(a.tobytes())
    digest.update(attrs_digest(attrs).encode())
    return digest.hexdigest()
