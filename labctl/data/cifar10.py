"""CIFAR-10 "python version" batches: ``data_batch_1`` … ``data_batch_5`` and ``test_batch`` in DIR
(or in DIR/cifar-10-batches-py), each a pickle of ``{b"data": uint8 (N, 3072), b"labels": [N]}``.

Pickles can run code when loaded, so only the few globals that a numpy array needs are allowed.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from labctl.data.dataset import Dataset, Split
from labctl.data.errors import DataFileError

TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCH = "test_batch"
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR-10 batch")


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open("rb") as fh:
            batch = _ArrayOnlyUnpickler(fh, encoding="bytes").load()
    except OSError as exc:
        raise DataFileError(path, f"cannot read: {exc.strerror or exc}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise DataFileError(path, f"not a CIFAR-10 python batch: {exc}") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataFileError(path, "not a CIFAR-10 python batch: expected a dict with b'data' and b'labels'")
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataFileError(path, f"b'data' is {data.dtype} {data.shape}; expected uint8 (N, 3072)")
    if labels.shape != (data.shape[0],):
        raise DataFileError(path, f"{labels.size} labels for {data.shape[0]} images")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataFileError(path, f"labels span {labels.min()}..{labels.max()}; CIFAR-10 has classes 0..9")
    return data.reshape(-1, 3, 32, 32), labels


def _split(paths: list[Path]) -> Split:
    parts = [read_batch(p) for p in paths]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return Split(torch.from_numpy(images), torch.from_numpy(labels))


def load_cifar10_dataset(directory: Path, spec: str) -> Dataset:
    if not directory.is_dir():
        raise DataFileError(directory, "no such directory (for --data cifar10:DIR)")
    if not (directory / TEST_BATCH).exists() and (directory / "cifar-10-batches-py").is_dir():
        directory = directory / "cifar-10-batches-py"
    missing = [name for name in [*TRAIN_BATCHES, TEST_BATCH] if not (directory / name).is_file()]
    if missing:
        raise DataFileError(directory, f"missing CIFAR-10 batch file(s) {missing}")
    train = _split([directory / name for name in TRAIN_BATCHES])
    test = _split([directory / TEST_BATCH])
    return Dataset(spec, "classification", 10, train, test)
