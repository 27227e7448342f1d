"""Embedded classification set: a class-balanced Fashion-MNIST subset shipped in the package
(``labctl/data/fashion_mini``: 6000 training and 1000 test images of 28 × 28 px, 600 and 100 per
class, gzipped IDX, about 3 MB; MIT licence, see the LICENSE file there). Harder than ``digits``: a
nonlinear teacher leads a linear-optics student, which is the gap knowledge distillation closes.
How the files were made: ``benchmarks/fashion_mini.py``."""

from __future__ import annotations

from importlib.resources import as_file, files

import numpy as np
import torch

from labctl.data.dataset import Dataset, Split
from labctl.data.errors import DataFileError
from labctl.data.idx import read_idx

DEFAULT_SIZE = 28
FOLDER = "fashion_mini"
LICENSE = "LICENSE"
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def _read(name: str, ndim: int) -> np.ndarray:
    resource = files("labctl.data") / FOLDER / name
    if not resource.is_file():
        raise DataFileError(name, f"is missing from the installed package (labctl/data/{FOLDER}); reinstall labctl")
    with as_file(resource) as path:  # a real file even when the package is installed zipped
        return read_idx(path, ndim)


def _split(prefix: str) -> Split:
    images = _read(f"{prefix}-images-idx3-ubyte.gz", 3)
    labels = _read(f"{prefix}-labels-idx1-ubyte.gz", 1)
    return Split(torch.from_numpy(images.copy())[:, None], torch.from_numpy(labels.astype(np.int64)))


def load_fashion_mini_dataset(size: int = DEFAULT_SIZE, spec: str = "fashion-mini") -> Dataset:
    data = Dataset(spec, "classification", len(CLASSES), _split("train"), _split("t10k"))
    return data.resized(size)
