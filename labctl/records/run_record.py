"""One HDF5 file per run: per-input results, per-frame metadata, optional raw frames, a log of every
fault, and provenance. Written batch by batch and flushed, so a killed run loses at most the batch
in flight, and ``--resume`` continues with the inputs not yet marked done.

Layout::

    /                      attrs: format, created, and provenance as JSON strings
    /results/<name>        one row per input (index = position in the data set)
    /results/done          bool per input: its row is complete
    /frames                optional (n, rows, cols) uint16, gzip
    /results/row_crc       CRC-32 per input over its row of every column (verified when opened)
    /results/frame_crc     CRC-32 per stored frame (verified when the frame is read)
    /events                fault log: time_s, kind, first_index, message, crc
    /tables/<name>         optional logs of fixed-layout rows (e.g. the drift checks), a crc per row
    /arrays/<name>         optional arrays written once (e.g. the drift monitor's baseline), a crc each

Every attribute is covered by a SHA-256 (``attrs_sha256``). One process writes a record at a time:
:class:`labctl.records.writer_lock.WriterLock` (a lock file, not HDF5's file locking) and creation
with ``O_EXCL`` ensure it. Anything wrong with a file — missing or short column, flipped bytes,
another writer — is a :class:`RunRecordError` naming the file and the part at fault.
"""

from __future__ import annotations

import errno
import json
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import h5py
import numpy as np

from labctl.records.checksums import attrs_digest, row_crcs
from labctl.records.errors import RecordLockedError, RunRecordError
from labctl.records.writer_lock import WriterLock

FORMAT = "labctl-run/2"
_STR = h5py.string_dtype()
_EVENT_DTYPE = np.dtype(
    [("time_s", "f8"), ("kind", _STR), ("first_index", "i8"), ("message", _STR), ("crc", "u4")]
)
_ATTRS_SUM = "attrs_sha256"
#: attributes that are not JSON (everything else is stored as a JSON string)
_RAW_ATTRS = ("format", "created_unix_s", "columns", _ATTRS_SUM)
#: datasets in /results that are not columns
_BOOKKEEPING = ("done", "row_crc", "frame_crc")
#: an HDF5 read of a damaged file raises any of these
_READ_ERRORS = (OSError, KeyError, ValueError, TypeError, RuntimeError, UnicodeDecodeError, AttributeError)

__all__ = ["Column", "FORMAT", "RecordLockedError", "RunRecord", "RunRecordError"]


@dataclass(frozen=True)
class Column:
    """A per-input result column: name, per-row shape and dtype."""

    name: str
    shape: tuple[int, ...] = ()
    dtype: str = "f8"


class RunRecord:
    def __init__(self, h5: h5py.File, path: Path, columns: list[Column], lock: WriterLock | None = None) -> None:
        self._h5 = h5
        self.path = path
        self.columns = columns
        self._lock = lock

    # -- life cycle ------------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | Path,
        n_inputs: int,
        columns: list[Column],
        provenance: dict[str, Any],
        frame_shape: tuple[int, int] | None = None,
    ) -> Self:
        """A new record; refused if ``path`` exists or another process is creating it."""
        path = Path(path)
        if path.exists():
            raise RunRecordError(f"{path} exists; use --resume to continue it or choose another --out")
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = WriterLock(path)
        lock.acquire()
        try:
            h5 = h5py.File(path, "x")  # O_EXCL: never truncates a file created since the check above
        except OSError as exc:
            lock.release()
            if exc.errno == errno.EEXIST or path.exists():
                raise RunRecordError(f"{path} exists; use --resume to continue it or choose another --out") from None
            raise RunRecordError(f"cannot create {path}: {exc}") from None
        try:
            _write_layout(h5, n_inputs, columns, provenance, frame_shape)
        except BaseException:
            h5.close()
            path.unlink(missing_ok=True)
            lock.release()
            raise
        return cls(h5, path, columns, lock)

    @classmethod
    def open(cls, path: str | Path, mode: str = "r") -> Self:
        """Open and verify a record: layout, attribute checksum and every finished row's checksum.

        ``mode`` "r+" (to continue it) takes the writer lock first."""
        path = Path(path)
        if not path.is_file():
            raise RunRecordError(f"no run file at {path}")
        lock = WriterLock(path) if mode != "r" else None
        if lock is not None:
            lock.acquire()
        try:
            h5 = _open_h5(path, mode)
            try:
                columns = _verify(h5, path)
            except BaseException:
                h5.close()
                raise
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        return cls(h5, path, columns, lock)

    def close(self) -> None:
        try:
            if self._h5.id.valid:
                self._h5.flush()
                self._h5.close()
        finally:
            if self._lock is not None:
                self._lock.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ------------------------------------------------------------------------------------
    @property
    def n_inputs(self) -> int:
        return int(self._h5["results/done"].shape[0])

    def attr(self, key: str) -> Any:
        """An attribute, decoded from JSON; None if absent."""
        value = self._h5.attrs.get(key)
        if not isinstance(value, str) or key in _RAW_ATTRS:
            return value
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise RunRecordError(f"{self.path}: attribute {key!r} is not valid JSON ({exc})") from None

    def column(self, name: str) -> np.ndarray:
        if name not in {c.name for c in self.columns}:
            known = ", ".join(c.name for c in self.columns)
            raise RunRecordError(f"{self.path} has no column {name!r} (it records: {known})")
        return self._read(f"results/{name}", ...)

    @property
    def done(self) -> np.ndarray:
        return self._read("results/done", ...)

    @property
    def has_frames(self) -> bool:
        return "frames" in self._h5

    def frames(self, index: np.ndarray | slice) -> np.ndarray:
        """Stored frames of finished inputs, each checked against its CRC-32. The frame of an input not
        marked done reads as zeros: a run killed mid-batch may have left part of it on disk, and
        ``--resume`` writes it again."""
        frames = self._read("frames", index)
        crcs = np.atleast_1d(self._read("results/frame_crc", index))
        finished = np.atleast_1d(self._read("results/done", index))
        stack = frames.reshape(-1, *self._h5["frames"].shape[1:])  # one row per input (a frame, or one per channel group)
        stack[~finished] = 0
        written = (crcs != 0) & finished
        if written.any():
            bad = np.flatnonzero(row_crcs([stack[written]]) != crcs[written])
            if bad.size:
                raise RunRecordError(f"{self.path}: {bad.size} of the frames read fail their checksum (damaged file)")
        return frames

    def events(self) -> list[dict[str, Any]]:
        out = []
        for i, e in enumerate(self._read("events", ...)):
            kind = _s(e["kind"])
            if not kind:  # a row left empty by a write cut short is no event
                continue
            event = {"time_s": float(e["time_s"]), "kind": kind, "first_index": int(e["first_index"]), "message": _s(e["message"])}
            if _event_crc(event) != int(e["crc"]):
                raise RunRecordError(f"{self.path}: event {i} ({kind!r}) fails its checksum (damaged or edited file)")
            out.append(event)
        return out

    def table(self, name: str) -> np.ndarray | None:
        """The rows of table ``name`` (a structured array without the crc field), each checked against
        its CRC-32; None if the record has no such table."""
        where = f"tables/{name}"
        if where not in self._h5:
            return None
        rows = self._read(where, ...)
        fields = [f for f in rows.dtype.names if f != "crc"]
        payload = _without_crc(rows, fields)
        bad = np.flatnonzero(row_crcs([payload]) != rows["crc"]) if rows.size else np.empty(0, int)
        if bad.size:
            raise RunRecordError(f"{self.path}: row {int(bad[0])} of table {name!r} fails its checksum (damaged or edited file)")
        return payload

    def array(self, name: str) -> np.ndarray | None:
        """Array ``name`` as written by :meth:`put_array`, checked against its CRC-32; None if absent."""
        where = f"arrays/{name}"
        if where not in self._h5:
            return None
        data = self._read(where, ...)
        if row_crcs([data.reshape(1, -1)])[0] != self._h5[where].attrs.get("crc32"):
            raise RunRecordError(f"{self.path}: array {name!r} fails its checksum (damaged or edited file)")
        return data

    def _read(self, name: str, index: Any) -> np.ndarray:
        try:
            return self._h5[name][index]
        except _READ_ERRORS as exc:
            raise RunRecordError(f"{self.path}: cannot read {name!r}: {exc} (damaged file?)") from None

    # -- writing --------------------------------------------------------------------------------------
    def write_batch(self, indices: np.ndarray, values: dict[str, np.ndarray], frames: np.ndarray | None = None) -> None:
        """Store one batch's rows (every column) with their checksums, then mark them done, then flush."""
        missing = [c.name for c in self.columns if c.name not in values]
        unknown = sorted(set(values) - {c.name for c in self.columns})
        if missing or unknown:
            raise RunRecordError(f"{self.path}: a batch must give every column; missing {missing}, unknown {unknown}")
        order = np.argsort(indices)
        idx = np.asarray(indices)[order]
        rows = [np.asarray(values[c.name], dtype=c.dtype)[order] for c in self.columns]
        for col, value in zip(self.columns, rows):
            self._h5[f"results/{col.name}"][idx] = value
        self._h5["results/row_crc"][idx] = row_crcs(rows)
        if frames is not None and self.has_frames:
            stored = np.asarray(frames)[order].astype(self._h5["frames"].dtype)
            self._h5["frames"][idx] = stored
            self._h5["results/frame_crc"][idx] = row_crcs([stored])
        self._h5.flush()  # the rows reach the disk before the flag that says they are complete
        self._h5["results/done"][idx] = True
        self._h5.flush()

    def log_event(self, kind: str, message: str, first_index: int = -1) -> None:
        events = self._h5["events"]
        n = events.shape[0]
        event = {"time_s": time.time(), "kind": kind, "first_index": int(first_index), "message": message}
        events.resize((n + 1,))
        events[n] = (event["time_s"], kind, event["first_index"], message, _event_crc(event))
        self._h5.flush()

    def append_row(self, name: str, row: dict[str, Any]) -> None:
        """Append one row to table ``name`` (created by its first row: one field per key, of that
        value's dtype and shape; every later row must have the same keys and shapes), then flush."""
        values = {key: np.asarray(value) for key, value in row.items()}
        where = f"tables/{name}"
        if where not in self._h5:
            dtype = np.dtype([(key, v.dtype, v.shape) for key, v in values.items()] + [("crc", "u4")])
            self._h5.require_group("tables").create_dataset(name, shape=(0,), maxshape=(None,), dtype=dtype, chunks=(64,))
        table = self._h5[where]
        fields = [f for f in table.dtype.names if f != "crc"]
        if sorted(fields) != sorted(values):
            raise RunRecordError(f"{self.path}: a row of table {name!r} must give {fields}; got {sorted(values)}")
        record = np.zeros(1, dtype=table.dtype)
        try:
            for key in fields:
                record[key] = values[key]
        except ValueError as exc:
            raise RunRecordError(f"{self.path}: a row of table {name!r} does not fit its layout: {exc}") from None
        record["crc"] = row_crcs([_without_crc(record, fields)])
        n = table.shape[0]
        table.resize((n + 1,))
        table[n] = record[0]
        self._h5.flush()

    def put_array(self, name: str, data: np.ndarray) -> None:
        """Store ``data`` once (gzip) under ``name`` with its CRC-32; refused if the name is taken."""
        if f"arrays/{name}" in self._h5:
            raise RunRecordError(f"{self.path} already holds array {name!r}; it is written once")
        data = np.ascontiguousarray(data)
        ds = self._h5.require_group("arrays").create_dataset(name, data=data, compression="gzip", compression_opts=4)
        ds.attrs["crc32"] = row_crcs([data.reshape(1, -1)])[0]
        self._h5.flush()

    def set_attr(self, key: str, value: Any) -> None:
        if key in _RAW_ATTRS:
            raise RunRecordError(f"{self.path}: attribute {key!r} is the record's own")
        self._h5.attrs[key] = json.dumps(value, default=str)
        self._h5.attrs[_ATTRS_SUM] = attrs_digest(self._h5.attrs, skip=(_ATTRS_SUM,))
        self._h5.flush()


def _write_layout(
    h5: h5py.File, n_inputs: int, columns: list[Column], provenance: dict[str, Any], frame_shape: tuple[int, int] | None
) -> None:
    names = [c.name for c in columns]
    clash = sorted({n for n in names if names.count(n) > 1} | set(names) & set(_BOOKKEEPING))
    if clash:
        raise RunRecordError(f"column name(s) {clash} used twice or reserved")
    h5.attrs["format"] = FORMAT
    h5.attrs["created_unix_s"] = time.time()
    h5.attrs["columns"] = json.dumps([[c.name, list(c.shape), c.dtype] for c in columns])
    for key, value in provenance.items():
        h5.attrs[key] = json.dumps(value, default=str)
    h5.attrs[_ATTRS_SUM] = attrs_digest(h5.attrs, skip=(_ATTRS_SUM,))
    results = h5.create_group("results")
    for col in columns:
        results.create_dataset(col.name, shape=(n_inputs, *col.shape), dtype=col.dtype, fillvalue=0)
    results.create_dataset("done", shape=(n_inputs,), dtype=bool, fillvalue=False)
    results.create_dataset("row_crc", shape=(n_inputs,), dtype="u4", fillvalue=0)
    if frame_shape is not None:
        h5.create_dataset(
            "frames", shape=(n_inputs, *frame_shape), dtype="u2", chunks=(1, *frame_shape), compression="gzip",
            compression_opts=4, shuffle=True,
        )
        results.create_dataset("frame_crc", shape=(n_inputs,), dtype="u4", fillvalue=0)
    h5.create_dataset("events", shape=(0,), maxshape=(None,), dtype=_EVENT_DTYPE, chunks=(64,))
    h5.flush()


def _open_h5(path: Path, mode: str) -> h5py.File:
    try:
        return h5py.File(path, mode)
    except OSError as exc:
        writer = WriterLock(path).holder_message()
        if writer is not None:  # HDF5's own lock refused us: say who holds the file
            raise RecordLockedError(writer) from None
        raise RunRecordError(f"{path} is not a readable HDF5 file: {exc}") from None


def _verify(h5: h5py.File, path: Path) -> list[Column]:
    """The record's columns, after checking its format, layout and checksums."""
    try:
        fmt = h5.attrs.get("format")
        if fmt != FORMAT:
            raise RunRecordError(f"{path} is not a labctl run file of format {FORMAT} (format {fmt!r})")
        stored_sum = h5.attrs.get(_ATTRS_SUM)
        if stored_sum != attrs_digest(h5.attrs, skip=(_ATTRS_SUM,)):
            raise RunRecordError(f"{path}: its attributes (provenance, readout scale) fail their checksum: edited or damaged")
        columns = _declared_columns(h5, path)
        if "results/done" not in h5 or "results/row_crc" not in h5 or "events" not in h5:
            raise RunRecordError(f"{path} lacks results/done, results/row_crc or events: not a complete run file")
        n = h5["results/done"].shape[0] if h5["results/done"].ndim == 1 else -1
        for name, shape, dtype in [*((c.name, (n, *c.shape), c.dtype) for c in columns), ("row_crc", (n,), "u4")]:
            where = f"results/{name}"
            if where not in h5 or not isinstance(h5[where], h5py.Dataset):
                raise RunRecordError(f"{path}: column {name!r} is missing")
            ds = h5[where]
            if ds.shape != shape or ds.dtype != np.dtype(dtype):
                raise RunRecordError(f"{path}: column {name!r} is {ds.dtype} {ds.shape}; the record declares {np.dtype(dtype)} {shape}")
        if "frames" in h5 and ("results/frame_crc" not in h5 or h5["frames"].shape[0] != n or h5["results/frame_crc"].shape != (n,)):
            raise RunRecordError(f"{path}: frames or their checksums (results/frame_crc) do not cover the {n} inputs")
        done = h5["results/done"][...]
        if done.dtype != np.bool_:
            raise RunRecordError(f"{path}: column 'done' is {done.dtype}, not bool")
        rows = np.flatnonzero(done)
        if rows.size:
            values = [h5[f"results/{c.name}"][...][rows] for c in columns]
            bad = np.flatnonzero(row_crcs(values) != h5["results/row_crc"][...][rows])
            if bad.size:
                raise RunRecordError(
                    f"{path}: {bad.size} finished row(s) fail their checksum (first: input {int(rows[bad[0]])}): "
                    "the file was damaged or edited"
                )
    except RunRecordError:
        raise
    except _READ_ERRORS as exc:
        raise RunRecordError(f"{path}: cannot read the run file's layout: {type(exc).__name__}: {exc} (damaged file?)") from None
    return columns


def _declared_columns(h5: h5py.File, path: Path) -> list[Column]:
    try:
        doc = json.loads(h5.attrs["columns"])
        columns = [Column(str(name), tuple(int(s) for s in shape), str(dtype)) for name, shape, dtype in doc]
        for c in columns:
            np.dtype(c.dtype)  # TypeError for a dtype numpy does not know
    except (KeyError, json.JSONDecodeError, TypeError, ValueError) as exc:
        raise RunRecordError(f"{path}: its column list (attribute 'columns') is missing or malformed: {exc}") from None
    if not columns:
        raise RunRecordError(f"{path} declares no columns")
    return columns


def _without_crc(rows: np.ndarray, fields: list[str]) -> np.ndarray:
    """``rows`` with only ``fields``, packed (the bytes a table row's CRC-32 is over)."""
    packed = np.empty(rows.shape, dtype=np.dtype([(f, rows.dtype.fields[f][0]) for f in fields]))
    for f in fields:
        packed[f] = rows[f]
    return packed


def _event_crc(event: dict[str, Any]) -> int:
    return zlib.crc32(json.dumps([event["time_s"], event["kind"], event["first_index"], event["message"]]).encode())


def _s(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)
