"""The embedded Fashion-MNIST subset (``--data fashion-mini``, the demo's default): what the package
ships, that it installs with the package, and the script that made it."""

from __future__ import annotations

import fnmatch
import gzip
import importlib.util
import struct
import sys
import tomllib
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
import torch

from labctl.data import DataSpecError, load_dataset
from labctl.data.fashion_mini import CLASSES, FOLDER, LICENSE

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def _script():
    spec = importlib.util.spec_from_file_location("fashion_mini_script", ROOT / "benchmarks" / "fashion_mini.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_spec_loads_the_shipped_subset_balanced() -> None:
    data = load_dataset("fashion-mini")
    assert (data.spec, data.task, data.num_classes, data.channels, data.size) == ("fashion-mini", "classification", 10, 1, 28)
    assert tuple(data.train.images.shape) == (6000, 1, 28, 28) and tuple(data.test.images.shape) == (1000, 1, 28, 28)
    assert data.train.images.dtype == torch.uint8
    assert torch.bincount(data.train.targets, minlength=10).tolist() == [600] * 10
    assert torch.bincount(data.test.targets, minlength=10).tolist() == [100] * 10
    # shuffled (not sorted by class) and real images, not blank ones
    assert len(set(data.train.targets[:20].tolist())) > 3
    assert float(data.train.images.float().mean()) > 40 and int(data.train.images.max()) == 255
    # no test image is also a training image
    train = {bytes(x) for x in data.train.images.numpy()}
    assert not any(bytes(x) in train for x in data.test.images.numpy())
    assert len(CLASSES) == 10


def test_spec_resizes_and_refuses_an_argument() -> None:
    assert load_dataset("fashion-mini", 32).size == 32
    with pytest.raises(DataSpecError, match="takes no argument"):
        load_dataset("fashion-mini:/tmp")


def test_licence_is_shipped_and_names_both_sources() -> None:
    text = (files("labctl.data") / FOLDER / LICENSE).read_text()
    assert "Copyright (c) 2017 Zalando SE" in text and "Juan Cazala" in text
    assert text.count("Permission is hereby granted, free of charge") == 2  # both MIT notices in full
    assert "benchmarks/fashion_mini.py" in text


def test_package_data_declares_every_shipped_file() -> None:
    """pyproject's package-data must match the files, or an installed labctl has no demo data."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    declared = patterns.get("labctl.data", []) + patterns.get("*", [])
    for name in [*SHIPPED, LICENSE]:
        assert (ROOT / "labctl" / "data" / FOLDER / name).is_file()
        assert any(fnmatch.fnmatch(f"{FOLDER}/{name}", p) for p in declared), name
    total = sum((ROOT / "labctl" / "data" / FOLDER / n).stat().st_size for n in SHIPPED)
    assert 1e6 < total < 5e6  # "a few MB"


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def test_script_draws_a_balanced_reproducible_subset(tmp_path: Path) -> None:
    script = _script()
    source = tmp_path / "full"
    source.mkdir()
    rng = np.random.default_rng(1)
    for prefix, n in (("train", 120), ("t10k", 60)):
        _write_idx(source / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(source / f"{prefix}-labels-idx1-ubyte.gz", rng.permutation(np.arange(n) % 10))
    first = script.subset(source, tmp_path / "a", train_per_class=5, test_per_class=2)
    second = script.subset(source, tmp_path / "b", train_per_class=5, test_per_class=2)
    assert first["train"] == {"images": 50, "per_class": [5] * 10} and first["t10k"] == {"images": 20, "per_class": [2] * 10}
    for name in SHIPPED:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    data = load_dataset(f"idx:{tmp_path / 'a'}")
    assert len(data.train) == 50 and torch.bincount(data.train.targets).tolist() == [5] * 10
    with pytest.raises(ValueError, match="class 0 has"):
        script.subset(source, tmp_path / "c", train_per_class=13)


@pytest.mark.skipif(not Path("/tmp/fashion/train-images-idx3-ubyte.gz").is_file(), reason="full Fashion-MNIST not at /tmp/fashion")
def test_shipped_files_are_what_the_script_writes(tmp_path: Path) -> None:
    _script().subset(Path("/tmp/fashion"), tmp_path)
    for name in SHIPPED:
        assert (tmp_path / name).read_bytes() == (ROOT / "labctl" / "data" / FOLDER / name).read_bytes(), name
