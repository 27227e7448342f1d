"""Mask files damaged or made wrong: payload edits (checksum), malformed attributes and arrays,
files that are no mask file, and — with a valid checksum — gray levels that are not the phase
pattern through the phase table, refused before the mask is shown and before a record exists."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from drivers.phase_table import PhaseTable
from labctl.masks.mask_file import MaskFile, MaskFileError
from labctl.runner.session import RunOptions, run_masks


@pytest.fixture
def masks(trained, tmp_path: Path) -> Path:
    path = tmp_path / "MASKS.h5"
    path.write_bytes(trained.masks.read_bytes())
    return path


def _refused(path: Path, *words: str) -> str:
    with pytest.raises(MaskFileError) as info:
        MaskFile.load(path)
    message = str(info.value)
    assert str(path) in message, message
    for word in words:
        assert word in message, message
    return message


PAYLOAD_EDITS = {
    "one gray level": lambda h5: h5["gray"].__setitem__((5, 7), (int(h5["gray"][5, 7]) + 1) % 256),
    "gray row shifted": lambda h5: h5["gray"].__setitem__(3, np.roll(h5["gray"][3], 1)),
    "one phase": lambda h5: h5["phase_rad"].__setitem__((0, 0), float(h5["phase_rad"][0, 0]) + 0.5),
    "phase flipped": lambda h5: h5["phase_rad"].__setitem__(slice(None), h5["phase_rad"][...][::-1]),
    "method": lambda h5: h5.attrs.__setitem__("method", "sclc-double-phase"),
    "model hash": lambda h5: h5.attrs.__setitem__("model", json.dumps({"kind": "optics_aware", "checkpoint": "x", "sha256": "f" * 64})),
    "calibration id": lambda h5: h5.attrs.__setitem__("calibration", json.dumps({"slm_phase": "linear", "camera": "cam-1"})),
    "extra": lambda h5: h5.attrs.__setitem__("extra", json.dumps({})),
    "checksum removed": lambda h5: h5.attrs.__delitem__("payload_sha256"),
}


@pytest.mark.parametrize("edit", PAYLOAD_EDITS, ids=list(PAYLOAD_EDITS))
def test_edited_payload_fails_its_checksum(masks: Path, edit: str) -> None:
    with h5py.File(masks, "r+") as h5:
        PAYLOAD_EDITS[edit](h5)
    _refused(masks, "checksum")


MALFORMED = {
    "no gray": (lambda h5: h5.__delitem__("gray"), "incomplete or malformed"),
    "no phase": (lambda h5: h5.__delitem__("phase_rad"), "incomplete or malformed"),
    "no layout": (lambda h5: h5.attrs.__delitem__("layout"), "incomplete or malformed"),
    "layout not JSON": (lambda h5: h5.attrs.__setitem__("layout", "{rows: 3"), "incomplete or malformed"),
    "model not JSON": (lambda h5: h5.attrs.__setitem__("model", "["), "incomplete or malformed"),
    "unknown method": (lambda h5: h5.attrs.__setitem__("method", "holography"), "unknown mask method"),
    "other format": (lambda h5: h5.attrs.__setitem__("format", "labctl-run/2"), "not a labctl mask file"),
    "phase NaN": (lambda h5: _replace(h5, "phase_rad", lambda a: np.where(a == a.max(), np.nan, a)), "NaN"),
    "phase inf": (lambda h5: _replace(h5, "phase_rad", lambda a: np.where(a == a.min(), np.inf, a)), "NaN or inf"),
    "gray as floats": (lambda h5: _replace(h5, "gray", lambda a: a.astype(np.float32)), "not integers"),
    "gray too deep": (lambda h5: _replace(h5, "gray", lambda a: a + np.uint16(300)), "gray levels outside 0..255"),
    "gray cropped": (lambda h5: _replace(h5, "gray", lambda a: a[:-1]), "gray has shape"),
    "phase transposed crop": (lambda h5: _replace(h5, "phase_rad", lambda a: a[:, :-2]), "phase_rad has shape"),
}


def _replace(h5: h5py.File, name: str, change) -> None:
    data = change(h5[name][...])
    del h5[name]
    h5.create_dataset(name, data=data)


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_malformed_mask_file_is_named(masks: Path, case: str) -> None:
    edit, words = MALFORMED[case]
    with h5py.File(masks, "r+") as h5:
        edit(h5)
    _refused(masks, words)


@pytest.mark.parametrize("content", [b"", b"not hdf5", b"\x89HDF\r\n\x1a\n", "truncated"], ids=["empty", "text", "signature", "truncated"])
def test_a_file_that_is_no_mask_file_is_named(masks: Path, content) -> None:
    masks.write_bytes(masks.read_bytes()[:2000] if content == "truncated" else content)
    _refused(masks, "not a readable HDF5 file")


def test_a_run_record_given_as_masks_is_named(trained) -> None:
    _refused(trained.run, "not a labctl mask file", "labctl-run/2")


def _regrayed(trained, tmp_path: Path, fraction: float, shift: int, seed: int) -> Path:
    """The trained mask with ``fraction`` of its gray levels moved by ``shift``, saved with a valid
    checksum (as a buggy exporter would), so only the gray-vs-phase check can catch it."""
    good = MaskFile.load(trained.masks)
    rng = np.random.default_rng(seed)
    gray = good.gray.copy()
    pick = rng.random(gray.shape) < fraction
    pick.flat[0] = True
    gray[pick] = (gray[pick].astype(np.int64) + shift) % 256
    path = tmp_path / "REGRAYED.h5"
    dataclasses.replace(good, gray=gray).save(path)
    return path


@pytest.mark.parametrize("fraction,shift", [(1.0, 128), (0.5, 64), (0.01, 20), (0.0, 3), (0.2, -9), (1.0, 255)])
def test_gray_levels_that_are_not_the_phase_through_the_table_are_refused(trained, tmp_path: Path, fraction: float, shift: int) -> None:
    path = _regrayed(trained, tmp_path, fraction, shift, seed=int(fraction * 100) + shift)
    masks = MaskFile.load(path)  # the file itself is consistent
    with pytest.raises(MaskFileError) as info:
        masks.check_gray(PhaseTable.linear(8))
    message = str(info.value)
    assert str(path) in message and "phase table 'linear'" in message and f"of {masks.gray.size} gray levels" in message, message


def test_gray_levels_through_the_table_pass_and_a_table_of_another_depth_is_named(trained) -> None:
    masks = MaskFile.load(trained.masks)
    masks.check_gray(PhaseTable.linear(8))
    with pytest.raises(MaskFileError, match="phase table 'linear' is 10-bit, the mask 8-bit"):
        masks.check_gray(PhaseTable.linear(10))


def test_run_refuses_a_regrayed_mask_before_any_record_exists(trained, tmp_path: Path) -> None:
    path = _regrayed(trained, tmp_path, 0.3, 50, seed=5)
    out = tmp_path / "RUN.h5"
    with pytest.raises(MaskFileError, match=r"REGRAYED\.h5: \d+ of \d+ gray levels .* are not its phase pattern"):
        run_masks(trained.spec, path, trained.data, out, options=RunOptions(limit=8))
    assert not out.exists()
