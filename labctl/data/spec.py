"""``--data`` spec → :class:`Dataset`."""

from __future__ import annotations

from pathlib import Path

from labctl.data.carvana import DEFAULT_SIZE as CARVANA_SIZE
from labctl.data.carvana import load_carvana_dataset
from labctl.data.cifar10 import load_cifar10_dataset
from labctl.data.dataset import Dataset
from labctl.data.digits import DEFAULT_SIZE as DIGITS_SIZE
from labctl.data.digits import load_digits_dataset
from labctl.data.errors import DataSpecError
from labctl.data.fashion_mini import DEFAULT_SIZE as FASHION_MINI_SIZE
from labctl.data.fashion_mini import load_fashion_mini_dataset
from labctl.data.idx import load_idx_dataset
from labctl.data.shapes import DEFAULT_SIZE as SHAPES_SIZE
from labctl.data.shapes import load_shapes_dataset

EMBEDDED = ("digits", "fashion-mini", "shapes")
WITH_DIRECTORY = ("idx", "cifar10", "carvana")
SPEC_HELP = "digits | fashion-mini | shapes | idx:DIR | cifar10:DIR | carvana:DIR"


def load_dataset(spec: str, size: int | None = None) -> Dataset:
    """Load the data set named by ``spec``, with images resized to ``size`` × ``size`` if given."""
    if size is not None and not 8 <= size <= 1024:
        raise DataSpecError(f"image size {size} is out of range 8..1024")
    kind, sep, arg = spec.partition(":")
    if kind in EMBEDDED:
        if sep:
            raise DataSpecError(f"data spec {spec!r}: {kind!r} is embedded and takes no argument (use --size for the image size)")
        if kind == "digits":
            return load_digits_dataset(size or DIGITS_SIZE, spec)
        if kind == "fashion-mini":
            return load_fashion_mini_dataset(size or FASHION_MINI_SIZE, spec)
        return load_shapes_dataset(size or SHAPES_SIZE, spec)
    if kind in WITH_DIRECTORY:
        if not arg:
            raise DataSpecError(f"data spec {spec!r}: {kind} needs a directory, as {kind}:DIR")
        directory = Path(arg).expanduser()
        if kind == "carvana":
            return load_carvana_dataset(directory, spec, size or CARVANA_SIZE)
        data = load_idx_dataset(directory, spec) if kind == "idx" else load_cifar10_dataset(directory, spec)
        return data.resized(size) if size is not None else data
    raise DataSpecError(f"unknown data spec {spec!r}; expected one of {SPEC_HELP}")
