"""Data sets: the embedded sets, and the local-file loaders with their errors for bad input."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from labctl.data import DataFileError, DataSpecError, load_dataset


def _idx(path: Path, array: np.ndarray, magic_type: int = 0x08, gz: bool = False, ndim: int | None = None) -> None:
    ndim = array.ndim if ndim is None else ndim
    raw = struct.pack(">HBB", 0, magic_type, ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


def _idx_dir(tmp_path: Path, n_train: int = 20, n_test: int = 10, gz: bool = False) -> Path:
    rng = np.random.default_rng(0)
    ext = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        _idx(tmp_path / f"{prefix}-images-idx3-ubyte{ext}", rng.integers(0, 256, (n, 28, 28)), gz=gz)
        _idx(tmp_path / f"{prefix}-labels-idx1-ubyte{ext}", np.arange(n) % 10, gz=gz)
    return tmp_path


def test_embedded_digits_are_mnist_like() -> None:
    data = load_dataset("digits")
    assert (data.task, data.num_classes, data.channels, data.size, data.name) == ("classification", 10, 1, 28, "digits")
    x, y = next(data.train.batches(64))
    assert x.dtype == torch.float32 and 0 <= float(x.min()) and float(x.max()) <= 1 and x.shape == (64, 1, 28, 28)
    assert set(data.train.targets.tolist()) == set(range(10))
    assert x[:, :, :3].abs().sum() == 0  # margin: digit in the central part, like MNIST


def test_embedded_shapes_have_masks() -> None:
    data = load_dataset("shapes", size=32)
    assert data.task == "segmentation" and data.size == 32
    assert data.train.targets.shape == (len(data.train), 32, 32)
    fraction = data.train.targets.float().mean()
    assert 0.05 < fraction < 0.6


@pytest.mark.parametrize("gz", [False, True])
def test_idx_loader_reads_mnist_layout(tmp_path: Path, gz: bool) -> None:
    data = load_dataset(f"idx:{_idx_dir(tmp_path, gz=gz)}")
    assert len(data.train) == 20 and len(data.test) == 10 and data.num_classes == 10 and data.size == 28
    assert load_dataset(f"idx:{tmp_path}", size=16).train.images.shape == (20, 1, 16, 16)


def test_idx_wrong_magic_names_the_file(tmp_path: Path) -> None:
    _idx_dir(tmp_path)
    _idx(tmp_path / "train-labels-idx1-ubyte", np.zeros((20, 28), dtype=np.uint8))  # 2-D where 1-D is expected
    with pytest.raises(DataFileError, match=r"train-labels-idx1-ubyte.*bad IDX magic number 0x00000802"):
        load_dataset(f"idx:{tmp_path}")
    _idx_dir(tmp_path)
    _idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((10, 28, 28)), magic_type=0x0D)  # float magic
    with pytest.raises(DataFileError, match="t10k-images-idx3-ubyte.*magic"):
        load_dataset(f"idx:{tmp_path}")


def test_idx_count_mismatch_and_truncation(tmp_path: Path) -> None:
    _idx_dir(tmp_path)
    _idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(19))
    with pytest.raises(DataFileError, match="19 labels but train-images-idx3-ubyte holds 20 images"):
        load_dataset(f"idx:{tmp_path}")
    _idx_dir(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(DataFileError, match="train-images-idx3-ubyte.*the file holds"):
        load_dataset(f"idx:{tmp_path}")


def test_idx_missing_files_and_directory(tmp_path: Path) -> None:
    _idx_dir(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataFileError, match="no t10k-labels-idx1-ubyte"):
        load_dataset(f"idx:{tmp_path}")
    with pytest.raises(DataFileError, match="no such directory"):
        load_dataset(f"idx:{tmp_path / 'nope'}")


@pytest.mark.parametrize("spec, message", [("mnist", "unknown data spec 'mnist'"), ("idx", "needs a directory"), ("digits:foo", "takes no argument")])
def test_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(DataSpecError, match=message):
        load_dataset(spec)


def test_cifar10_batches(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": [0, 1, 2, 9]}
        (tmp_path / name).write_bytes(pickle.dumps(batch))
    data = load_dataset(f"cifar10:{tmp_path}")
    assert data.channels == 3 and data.size == 32 and len(data.train) == 20 and len(data.test) == 4
    (tmp_path / "data_batch_3").write_bytes(pickle.dumps({b"data": np.zeros((4, 10), dtype=np.uint8), b"labels": [0] * 4}))
    with pytest.raises(DataFileError, match=r"data_batch_3.*expected uint8 \(N, 3072\)"):
        load_dataset(f"cifar10:{tmp_path}")
    (tmp_path / "test_batch").unlink()
    with pytest.raises(DataFileError, match="missing CIFAR-10 batch file"):
        load_dataset(f"cifar10:{tmp_path}")


def test_carvana_folder(tmp_path: Path) -> None:
    from PIL import Image

    (tmp_path / "train").mkdir()
    (tmp_path / "train_masks").mkdir()
    rng = np.random.default_rng(2)
    for k in range(5):
        Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(tmp_path / "train" / f"car{k}.jpg")
        mask = np.zeros((40, 50), dtype=np.uint8)
        mask[10:30, 10:40] = 1
        Image.fromarray(mask * 255).save(tmp_path / "train_masks" / f"car{k}_mask.png")
    data = load_dataset(f"carvana:{tmp_path}", size=16)
    assert data.task == "segmentation" and data.channels == 3 and len(data.train) == 4 and len(data.test) == 1
    assert data.train.targets.shape == (4, 16, 16) and 0 < data.train.targets.float().mean() < 1
    (tmp_path / "train_masks" / "car2_mask.png").unlink()
    with pytest.raises(DataFileError, match="car2.jpg: no mask"):
        load_dataset(f"carvana:{tmp_path}", size=16)
