"""Data that cannot be used: IDX files with hostile headers, bad data specs, and data sets that do
not fit the model or masks (labels beyond its classes, another image size, an empty test split),
refused with the numbers before a record exists — for ``run``, ``run --resume`` and ``evaluate``."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from labctl.cli import main
from labctl.data import DataFileError, DataSpecError, Dataset, Split, load_dataset
from labctl.data.errors import DataFitError
from labctl.runner.session import RunOptions, run_masks

FILES = {"train-images-idx3-ubyte": "train", "train-labels-idx1-ubyte": "train", "t10k-images-idx3-ubyte": "test",
         "t10k-labels-idx1-ubyte": "test"}


def _idx(dims: tuple[int, ...], data: bytes, magic: bytes | None = None) -> bytes:
    return (magic or bytes([0, 0, 8, len(dims)])) + struct.pack(f">{len(dims)}I", *dims) + data


def write_idx_set(directory: Path, size: int = 16, n: int = (24, 12), classes: int = 10, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", n[0]), ("t10k", n[1])):
        images = rng.integers(0, 256, (count, size, size), dtype=np.uint8)
        labels = (np.arange(count) % classes).astype(np.uint8)
        (directory / f"{split}-images-idx3-ubyte").write_bytes(_idx(images.shape, images.tobytes()))
        (directory / f"{split}-labels-idx1-ubyte").write_bytes(_idx(labels.shape, labels.tobytes()))
    return directory


HEADERS = {
    "dims overflow int64 (3 x 2^32-1)": lambda: _idx((2**32 - 1,) * 3, b"\0" * 64),
    "dims wrap to 0 (2^32-1 x 2^32-1 x 2^31)": lambda: _idx((2**32 - 1, 2**32 - 1, 2**31), b""),
    "dims 2^31 x 2^31 x 4": lambda: _idx((2**31, 2**31, 4), b"\0" * 16),
    "dims 65536^3": lambda: _idx((65536,) * 3, b"\0" * 256),
    "product 2^64 + 16": lambda: _idx((2**32 - 1, 2**32 - 1, 2), b"\0" * 16),
    "one byte short": lambda: _idx((2, 4, 4), b"\0" * 31),
    "one byte long": lambda: _idx((2, 4, 4), b"\0" * 33),
    "header cut": lambda: _idx((2, 4, 4), b"")[:9],
    "three bytes": lambda: b"\0\0\x08",
    "empty": lambda: b"",
    "magic of floats": lambda: _idx((2, 4, 4), b"\0" * 32, magic=bytes([0, 0, 0x0D, 3])),
    "magic nonzero prefix": lambda: _idx((2, 4, 4), b"\0" * 32, magic=bytes([1, 0, 8, 3])),
    "magic says 2 dims": lambda: _idx((2, 16), b"\0" * 32, magic=bytes([0, 0, 8, 2])),
    "zero images": lambda: _idx((0, 16, 16), b""),
    "zero-pixel images": lambda: _idx((5, 0, 0), b""),
    "not square": lambda: _idx((2, 4, 8), b"\0" * 64),
    "bad gzip": lambda: b"\x1f\x8b" + b"\0" * 30,
}


@pytest.mark.parametrize("case", HEADERS, ids=list(HEADERS))
@pytest.mark.parametrize("victim", ["train-images-idx3-ubyte", "t10k-images-idx3-ubyte"])
def test_hostile_idx_image_file_is_named(tmp_path: Path, case: str, victim: str) -> None:
    directory = write_idx_set(tmp_path / "idx")
    path = directory / victim
    if case == "bad gzip":
        path.unlink()
        path = directory / (victim + ".gz")
    path.write_bytes(HEADERS[case]())
    with pytest.raises(DataFileError) as info:
        load_dataset(f"idx:{directory}")
    assert info.value.path == str(path), str(info.value)


@pytest.mark.parametrize("change,words", [
    (lambda d: (d / "t10k-labels-idx1-ubyte").write_bytes(_idx((11,), bytes(11))), "11 labels but t10k-images-idx3-ubyte holds 12"),
    (lambda d: (d / "train-labels-idx1-ubyte").unlink(), "no train-labels-idx1-ubyte"),
    (lambda d: (d / "t10k-images-idx3-ubyte").write_bytes(gzip.compress(b"x")), "bad IDX magic"),
])
def test_inconsistent_idx_set_is_named(tmp_path: Path, change, words: str) -> None:
    directory = write_idx_set(tmp_path / "idx")
    change(directory)
    with pytest.raises(DataFileError, match=words):
        load_dataset(f"idx:{directory}")


@pytest.mark.parametrize("spec,error,words", [
    ("mnist", DataSpecError, "unknown data spec 'mnist'"),
    ("idx:", DataSpecError, "needs a directory"),
    ("idx:/nonexistent/fuzz", DataFileError, "/nonexistent/fuzz: no such directory"),
    ("cifar10:/nonexistent/fuzz", DataFileError, "/nonexistent/fuzz: no such directory"),
    ("digits:28", DataSpecError, "'digits' is embedded and takes no argument"),
    ("carvana:/nonexistent/fuzz", DataFileError, "no such directory"),
])
def test_bad_data_spec_is_named(spec: str, error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        load_dataset(spec)


def _resumable(trained, tmp_path: Path) -> Path:
    run = tmp_path / "RUN.h5"
    run.write_bytes(trained.run.read_bytes())
    return run


@pytest.mark.parametrize("resume", [False, True], ids=["new run", "resume"])
@pytest.mark.parametrize("classes", [11, 12, 256])
def test_labels_beyond_the_models_classes_are_refused_before_any_record(trained, tmp_path: Path, resume: bool, classes: int) -> None:
    data = load_dataset(f"idx:{write_idx_set(tmp_path / 'idx', classes=classes)}")
    out = _resumable(trained, tmp_path) if resume else tmp_path / "RUN.h5"
    before = out.read_bytes() if resume else None
    with pytest.raises(DataFitError, match=rf"labels span 0\.\.{min(classes, 24) - 1}; student .* has 10 classes \(0\.\.9\)"):
        run_masks(trained.spec, trained.masks, data, out, options=RunOptions(batch_size=8, limit=48 if resume else 8), resume=resume)
    assert (out.read_bytes() == before) if resume else not out.exists()


@pytest.mark.parametrize("resume", [False, True], ids=["new run", "resume"])
def test_an_empty_test_split_is_refused_before_any_record(trained, tmp_path: Path, resume: bool) -> None:
    d = trained.data
    empty = Dataset("digits-emptied", d.task, d.num_classes, d.train, Split(d.test.images[:0], d.test.targets[:0]))
    out = _resumable(trained, tmp_path) if resume else tmp_path / "RUN.h5"
    before = out.read_bytes() if resume else None
    with pytest.raises(DataFitError, match="digits-emptied: the test split holds no inputs"):
        run_masks(trained.spec, trained.masks, empty, out, resume=resume)
    assert (out.read_bytes() == before) if resume else not out.exists()


@pytest.mark.parametrize("args,words", [
    (["--data", "idx:{idx4}"], "has 4x4-px images; model .* takes 16x16 px"),
    (["--data", "idx:{idx12}"], "labels span 0..11; model .* has 10 classes"),
    (["--data", "shapes"], "shapes is a segmentation data set; model .* is a classification model"),
    (["--data", "idx:{empty}"], "t10k-images-idx3-ubyte: holds no image pixels"),
    (["--data", "idx:{idx4}", "--resize"], None),  # asked for: scaled up and evaluated
])
def test_evaluate_refuses_data_that_does_not_fit_the_model(trained, tmp_path: Path, args: list[str], words: str | None) -> None:
    dirs = {"idx4": write_idx_set(tmp_path / "idx4", size=4), "idx12": write_idx_set(tmp_path / "idx12", classes=12),
            "empty": write_idx_set(tmp_path / "empty", n=(24, 0))}
    result = CliRunner().invoke(main, ["evaluate", str(trained.student.parent), *[a.format(**dirs) for a in args]])
    if words is None:
        assert result.exit_code == 0, result.output
        return
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    import re

    assert re.search(words, result.output.replace("\n", "")), result.output


def test_the_embedded_digits_still_fit(trained) -> None:
    """The checks refuse what does not fit, not what does (labels 0..9, 16 px, 1 channel)."""
    from labctl.data.fit import check_fits_model
    from labctl.models.checkpoint import load_checkpoint

    check_fits_model(trained.data, load_checkpoint(trained.student).config, "student")
    assert torch.equal(trained.data.test.targets.unique(), torch.arange(10))
