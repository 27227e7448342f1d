"""Run records damaged in every way the fuzzer knows: missing, short or retyped columns, flipped
bytes in the payload and anywhere in the file, edited attributes, events and frames, files that are
not run records; the readout a resumed run reuses; exclusive creation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from labctl.cli import main
from labctl.records.checksums import attrs_digest
from labctl.records.run_record import RunRecord, RunRecordError
from labctl.runner.session import recorded_readout
from tests.fuzz.conftest import RECORD_COLUMNS, make_record, python, read_all, same

COLUMN_NAMES = [c.name for c in RECORD_COLUMNS]


@pytest.fixture
def record(tmp_path: Path) -> Path:
    path = tmp_path / "RUN.h5"
    make_record(path)
    return path


def _refused(path: Path, *names: str) -> RunRecordError:
    with pytest.raises(RunRecordError) as info:
        read_all(path)
    message = str(info.value)
    assert str(path) in message, message
    for name in names:
        assert name in message, message
    return info.value


@pytest.mark.parametrize("name", [*COLUMN_NAMES, "done", "row_crc", "frame_crc"])
def test_missing_column_is_named(record: Path, name: str) -> None:
    with h5py.File(record, "r+") as h5:
        del h5[f"results/{name}"]
    _refused(record, name if name not in ("frame_crc",) else "frame")


@pytest.mark.parametrize("name", COLUMN_NAMES)
def test_short_column_is_named(record: Path, name: str) -> None:
    with h5py.File(record, "r+") as h5:
        full = h5[f"results/{name}"][...]
        del h5[f"results/{name}"]
        h5.create_dataset(f"results/{name}", data=full[:-3])
    _refused(record, repr(name), str(full.shape))


@pytest.mark.parametrize("name,dtype", [("logits", "f8"), ("prediction", "i4"), ("label", "f4"), ("timestamp_s", "i8")])
def test_retyped_column_is_named(record: Path, name: str, dtype: str) -> None:
    with h5py.File(record, "r+") as h5:
        full = h5[f"results/{name}"][...]
        del h5[f"results/{name}"]
        h5.create_dataset(f"results/{name}", data=full.astype(dtype))
    _refused(record, repr(name))


@pytest.mark.parametrize("name", [*COLUMN_NAMES, "row_crc"])
@pytest.mark.parametrize("seed", [1, 2])
def test_flipped_payload_byte_is_refused(record: Path, name: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    with h5py.File(record, "r") as h5:
        ds = h5[f"results/{name}"]
        offset, n_bytes = ds.id.get_offset(), ds.id.get_storage_size()
    assert offset is not None and n_bytes > 0
    at = offset + int(rng.integers(0, n_bytes))
    raw = bytearray(record.read_bytes())
    raw[at] ^= 1 << int(rng.integers(0, 8))
    record.write_bytes(bytes(raw))
    _refused(record, "checksum")


def test_flipped_frame_and_event_are_refused(record: Path) -> None:
    with h5py.File(record, "r+") as h5:
        h5["frames"][5, 3, 3] ^= 4
    with RunRecord.open(record) as rec:
        with pytest.raises(RunRecordError, match=r"RUN\.h5: 1 of the frames read fail their checksum"):
            rec.frames(slice(None))
        assert rec.frames(slice(0, 5)).shape == (5, 8, 8)  # the intact ones stay readable
    with h5py.File(record, "r+") as h5:
        event = h5["events"][1]
        event["message"] = b"camera: link fine"
        h5["events"][1] = event
    with RunRecord.open(record) as rec, pytest.raises(RunRecordError, match=r"RUN\.h5: event 1 \('disconnect'\) fails its checksum"):
        rec.events()


ATTRIBUTE_EDITS = {
    "readout gain NaN": lambda a: a.__setitem__("readout", json.dumps({"exposure_s": 1e-3, "gain": [math.nan] * 4, "offset": [0.0] * 4})),
    "readout exposure": lambda a: a.__setitem__("readout", json.dumps({"exposure_s": 1.0, "gain": [1.0] * 4, "offset": [0.0] * 4})),
    "task": lambda a: a.__setitem__("task", json.dumps("segmentation")),
    "new attribute": lambda a: a.__setitem__("model_sha256", json.dumps("0" * 64)),
    "attribute removed": lambda a: a.__delitem__("method"),
    "checksum removed": lambda a: a.__delitem__("attrs_sha256"),
    "created time": lambda a: a.__setitem__("created_unix_s", 0.0),
}


def test_a_batch_cut_short_before_its_done_flag_reads_as_not_stored(tmp_path: Path) -> None:
    """A kill between the frames' chunk and the done flag reaching the disk (HDF5 writes evicted chunks
    in any order) leaves frames and checksums of unfinished inputs: they are no part of the record."""
    path = tmp_path / "RUN.h5"
    written = make_record(path, n=12, done=6)
    with h5py.File(path, "r+") as h5:  # what a killed writer's evicted chunks leave: half a frame, its CRC
        h5["frames"][8, :4] = 7
        h5["results/frame_crc"][8] = 12345
    with RunRecord.open(path) as rec:
        frames = rec.frames(slice(None))
        assert np.array_equal(frames[:6], written["frames"])
        assert not frames[6:].any()
        assert not rec.frames(8).any()


@pytest.mark.parametrize("edit", ATTRIBUTE_EDITS, ids=list(ATTRIBUTE_EDITS))
def test_edited_attributes_fail_their_checksum(record: Path, edit: str) -> None:
    with h5py.File(record, "r+") as h5:
        ATTRIBUTE_EDITS[edit](h5.attrs)
    _refused(record, "attributes", "checksum")


@pytest.mark.parametrize("columns,message", [
    (None, "column list"), ("[[", "column list"), ('[["prediction", [], "nonsense-dtype"]]', "column list"), ("[]", "declares no columns"),
])
def test_damaged_column_list_is_named(record: Path, columns: str | None, message: str) -> None:
    """Attribute damage that also fixes the checksum (what a careless tool would do) is still caught."""
    with h5py.File(record, "r+") as h5:
        if columns is None:
            del h5.attrs["columns"]
        else:
            h5.attrs["columns"] = columns
        h5.attrs["attrs_sha256"] = attrs_digest(h5.attrs, skip=("attrs_sha256",))
    _refused(record, message)


def test_format_of_another_file_kind_is_named(record: Path) -> None:
    with h5py.File(record, "r+") as h5:
        h5.attrs["format"] = "labctl-masks/1"
    _refused(record, "not a labctl run file", "labctl-masks/1")


NOT_RUN_FILES = {
    "empty": b"",
    "text": b"prediction,label\n1,1\n",
    "random bytes": bytes(np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8)),
    "hdf5 signature only": b"\x89HDF\r\n\x1a\n" + b"\0" * 100,
}


@pytest.mark.parametrize("kind", [*NOT_RUN_FILES, "mask file", "truncated 1/4", "truncated 1/2", "truncated 3/4", "truncated -1"])
def test_report_on_a_file_that_is_no_run_record_names_it(record: Path, trained, tmp_path: Path, kind: str) -> None:
    """``labctl report`` prints one line naming the file: no traceback (``report masks.h5`` was a KeyError)."""
    if kind == "mask file":
        path = trained.masks
    else:
        path = tmp_path / "bad.h5"
        if kind.startswith("truncated"):
            raw = record.read_bytes()
            part = kind.split()[1]
            keep = len(raw) - 1 if part == "-1" else len(raw) * int(part[0]) // int(part[2])
            path.write_bytes(raw[:keep])
        else:
            path.write_bytes(NOT_RUN_FILES[kind])
    result = CliRunner().invoke(main, ["report", str(path)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "RunRecordError" in result.output and str(path.name) in result.output, result.output


READOUTS = {
    "gain NaN": ({"exposure_s": 1e-3, "gain": [math.nan, 1, 1, 1], "offset": [0] * 4}, "gain"),
    "offset inf": ({"exposure_s": 1e-3, "gain": [1] * 4, "offset": [0, math.inf, 0, 0]}, "offset"),
    "gain too short": ({"exposure_s": 1e-3, "gain": [1] * 3, "offset": [0] * 4}, "gain"),
    "gain a matrix": ({"exposure_s": 1e-3, "gain": [[1] * 4] * 2, "offset": [0] * 4}, "gain"),
    "exposure negative": ({"exposure_s": -1.0, "gain": [1] * 4, "offset": [0] * 4}, "exposure_s = -1.0"),
    "exposure NaN": ({"exposure_s": math.nan, "gain": [1] * 4, "offset": [0] * 4}, "exposure_s = nan"),
    "exposure zero": ({"exposure_s": 0, "gain": [1] * 4, "offset": [0] * 4}, "exposure_s = 0"),
    "no gain": ({"exposure_s": 1e-3, "offset": [0] * 4}, "malformed"),
    "gain text": ({"exposure_s": 1e-3, "gain": "one", "offset": [0] * 4}, "malformed"),
    "not a table": ([1, 2, 3], "malformed"),
}


@pytest.mark.parametrize("case", READOUTS, ids=list(READOUTS))
def test_recorded_readout_must_be_finite_and_one_per_channel(case: str) -> None:
    saved, message = READOUTS[case]
    with pytest.raises(RunRecordError) as info:
        recorded_readout(Path("RUN.h5"), saved, 4)
    assert "RUN.h5" in str(info.value) and message in str(info.value)


def test_resume_with_a_nan_gain_is_refused_and_writes_nothing(trained, tmp_path: Path) -> None:
    """Even with the attribute checksum recomputed (a deliberate edit), NaN gains never reach the logits."""
    from labctl.runner.session import RunOptions, run_masks

    run = tmp_path / "RUN.h5"
    run.write_bytes(trained.run.read_bytes())
    with h5py.File(run, "r+") as h5:
        readout = json.loads(h5.attrs["readout"])
        readout["gain"][1] = math.nan
        h5.attrs["readout"] = json.dumps(readout)
        h5.attrs["attrs_sha256"] = attrs_digest(h5.attrs, skip=("attrs_sha256",))
        h5["results/done"][40:] = False
    before = read_all(run)
    with pytest.raises(RunRecordError, match=r"RUN\.h5: recorded readout gain \[.*nan.*\] is not 4 finite"):
        run_masks(trained.spec, trained.masks, trained.data, run, options=RunOptions(batch_size=16, limit=48), resume=True)
    after = read_all(run)
    assert int(after["done"].sum()) == 40
    assert same({k: v for k, v in before.items() if k != "events"}, {k: v for k, v in after.items() if k != "events"})


def test_creation_is_exclusive_even_when_the_file_appears_after_the_check(record: Path, monkeypatch) -> None:
    """RunRecord.create opens with O_EXCL: a file created between its exists() check and the open
    (another process) is never truncated."""
    before = record.read_bytes()
    monkeypatch.setattr(Path, "exists", lambda self: False)
    with pytest.raises(RunRecordError, match=r"RUN\.h5 exists; use --resume"):
        RunRecord.create(record, 3, RECORD_COLUMNS, {})
    monkeypatch.undo()
    assert record.read_bytes() == before and not record.with_name("RUN.h5.lock").exists()


#: how many single-bit flips at random places anywhere in the file
ANYWHERE_FLIPS = 40
_FLIP_SCRIPT = """
import faulthandler, json, sys
from pathlib import Path
from labctl.records.run_record import RunRecordError
from tests.fuzz.conftest import read_all, same
import numpy as np
record, out = Path(sys.argv[1]), Path(sys.argv[2])
original, raw = read_all(record), record.read_bytes()
for seed in range(int(sys.argv[3])):
    rng = np.random.default_rng(1000 + seed)
    damaged = bytearray(raw)
    damaged[int(rng.integers(0, len(raw)))] ^= 1 << int(rng.integers(0, 8))
    path = out / f"flip{seed}.h5"
    path.write_bytes(bytes(damaged))
    faulthandler.dump_traceback_later(20, exit=True)  # HDF5 itself hanging is reported, not waited for
    try:
        outcome = "same" if same(read_all(path), original) else "different"
        message = ""
    except RunRecordError as exc:
        outcome, message = "refused", str(exc)
    except Exception as exc:
        outcome, message = "crash", f"{type(exc).__name__}: {exc}"
    faulthandler.cancel_dump_traceback_later()
    print(json.dumps({"seed": seed, "outcome": outcome, "message": message, "path": str(path)}), flush=True)
"""


@pytest.fixture(scope="module")
def anywhere_flips(tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict]:
    """One subprocess reads every flipped copy (a C-level crash of HDF5 would not take pytest down)."""
    root = tmp_path_factory.mktemp("flips")
    make_record(root / "RUN.h5")
    run = python("import sys; sys.argv[1:] = %r\n" % [str(root / "RUN.h5"), str(root), str(ANYWHERE_FLIPS)] + _FLIP_SCRIPT, timeout=120)
    results = {r["seed"]: r for r in map(json.loads, run.stdout.splitlines())}
    assert results or run.returncode == 0, run.stderr[-2000:]
    return results


@pytest.mark.parametrize("seed", range(ANYWHERE_FLIPS))
def test_a_flipped_bit_anywhere_is_refused_or_harmless(anywhere_flips: dict[int, dict], seed: int) -> None:
    """A flipped bit either lands in bytes no value depends on (everything reads back identical) or
    is refused with a RunRecordError naming the file; never a traceback, never different data."""
    result = anywhere_flips.get(seed)
    assert result is not None, "the reader died or hung on this file"
    assert result["outcome"] in ("same", "refused"), result
    if result["outcome"] == "refused":
        assert result["path"] in result["message"], result
