"""One HDF5 file per run: per-input results, per-frame metadata, optional raw frames, a log of every
fault, and provenance. Written batch by batch and flushed, so a killed run loses at most the batch
in flight, and ``--resume`` continues with the inputs not yet marked done.

Layout::

    /                      attrs: format, created, and provenance as JSON strings
    /results/<name>        one row per input (index = position in the data set)
    /results/done          bool per input: its row is complete
    /frames                optional (n, rows, cols) uint16, gzip
    /events                fault log: time_s, kind, first_index, message
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import h5py
import numpy as np

FORMAT = "labctl-run/1"
_STR = h5py.string_dtype()
_EVENT_DTYPE = np.dtype([("time_s", "f8"), ("kind", _STR), ("first_index", "i8"), ("message", _STR)])


class RunRecordError(RuntimeError):
    """The run file is missing, of another format, or does not match the run being resumed."""


@dataclass(frozen=True)
class Column:
    """A per-input result column: name, per-row shape and dtype."""

    name: str
    shape: tuple[int, ...] = ()
    dtype: str = "f8"


class RunRecord:
    def __init__(self, h5: h5py.File, path: Path) -> None:
        self._h5 = h5
        self.path = path

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
        path = Path(path)
        if path.exists():
            raise RunRecordError(f"{path} exists; use --resume to continue it or choose another --out")
        path.parent.mkdir(parents=True, exist_ok=True)
        h5 = h5py.File(path, "w")
        h5.attrs["format"] = FORMAT
        h5.attrs["created_unix_s"] = time.time()
        for key, value in provenance.items():
            h5.attrs[key] = json.dumps(value, default=str)
        results = h5.create_group("results")
        for col in columns:
            results.create_dataset(col.name, shape=(n_inputs, *col.shape), dtype=col.dtype, fillvalue=0)
        results.create_dataset("done", shape=(n_inputs,), dtype=bool, fillvalue=False)
        if frame_shape is not None:
            h5.create_dataset(
                "frames", shape=(n_inputs, *frame_shape), dtype="u2", chunks=(1, *frame_shape), compression="gzip",
                compression_opts=4, shuffle=True,
            )
        h5.create_dataset("events", shape=(0,), maxshape=(None,), dtype=_EVENT_DTYPE, chunks=(64,))
        h5.flush()
        return cls(h5, path)

    @classmethod
    def open(cls, path: str | Path, mode: str = "r") -> Self:
        path = Path(path)
        if not path.exists():
            raise RunRecordError(f"no run file at {path}")
        try:
            h5 = h5py.File(path, mode)
        except OSError as exc:
            raise RunRecordError(f"{path} is not a readable HDF5 file: {exc}") from None
        if h5.attrs.get("format") != FORMAT:
            h5.close()
            raise RunRecordError(f"{path} is not a labctl run file (format {h5.attrs.get('format')!r})")
        return cls(h5, path)

    def close(self) -> None:
        if self._h5.id.valid:
            self._h5.flush()
            self._h5.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ------------------------------------------------------------------------------------
    @property
    def n_inputs(self) -> int:
        return int(self._h5["results/done"].shape[0])

    def attr(self, key: str) -> Any:
        value = self._h5.attrs.get(key)
        return json.loads(value) if isinstance(value, str) and key not in ("format",) else value

    def column(self, name: str) -> np.ndarray:
        return self._h5[f"results/{name}"][...]

    @property
    def done(self) -> np.ndarray:
        return self._h5["results/done"][...]

    @property
    def has_frames(self) -> bool:
        return "frames" in self._h5

    def frames(self, index: np.ndarray | slice) -> np.ndarray:
        return self._h5["frames"][index]

    def events(self) -> list[dict[str, Any]]:
        return [
            {"time_s": float(e["time_s"]), "kind": _s(e["kind"]), "first_index": int(e["first_index"]), "message": _s(e["message"])}
            for e in self._h5["events"][...]
            if _s(e["kind"])  # a row left empty by a write cut short is no event
        ]

    # -- writing --------------------------------------------------------------------------------------
    def write_batch(self, indices: np.ndarray, values: dict[str, np.ndarray], frames: np.ndarray | None = None) -> None:
        """Store one batch's rows, then mark them done, then flush (in that order)."""
        order = np.argsort(indices)
        idx = np.asarray(indices)[order]
        for name, value in values.items():
            self._h5[f"results/{name}"][idx] = np.asarray(value)[order]
        if frames is not None and self.has_frames:
            self._h5["frames"][idx] = frames[order]
        done = self._h5["results/done"]
        done[idx] = True
        self._h5.flush()

    def log_event(self, kind: str, message: str, first_index: int = -1) -> None:
        events = self._h5["events"]
        n = events.shape[0]
        events.resize((n + 1,))
        events[n] = (time.time(), kind, first_index, message)
        self._h5.flush()

    def set_attr(self, key: str, value: Any) -> None:
        self._h5.attrs[key] = json.dumps(value, default=str)
        self._h5.flush()


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
