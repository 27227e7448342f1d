"""Calibration records: one JSON file per calibration, its arrays in an ``.npz`` beside it.

Format (``<id>.json``)::

    {"format": "labctl-calibration/1", "id": ..., "kind": "slm_phase" | "camera" | "registration" | "input_response",
     "device": {"driver", "vendor", "model", "serial"}, "wavelength_m": ..., "created": ISO-8601,
     "software": {"labctl": version}, "method": ..., "params": {...}, "residuals": {...},
     "arrays": "<id>.npz" | null}

``params`` and ``residuals`` hold scalars and short lists; anything array-like (phase tables,
dark maps, spot lists) lives in the ``.npz`` under the names listed in ``arrays``.
"""

from __future__ import annotations

import json
import math
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from calibration.errors import CalibrationMismatch, CalibrationRecordError
from drivers.device import DeviceInfo

FORMAT = "labctl-calibration/1"
#: the one table of calibration kinds: each kind, in the order a full calibration measures them (the
#: input response first: the others show their patterns through its table; see calibration.run.calibrate_all),
#: and the bench role whose device a record of that kind belongs to (and is checked against)
ROLE_OF_KIND = {"input_response": "input_slm", "slm_phase": "fourier_slm", "camera": "camera", "registration": "camera"}
KINDS = tuple(ROLE_OF_KIND)
#: relative wavelength difference below which two wavelengths count as the same
WAVELENGTH_RTOL = 1e-3
#: the largest record JSON read (records hold scalars and short lists: a few kB)
MAX_RECORD_BYTES = 16 * 2**20
#: the largest arrays file, on disk and unpacked (a camera record of an 8192×8192 sensor: ~0.6 GiB)
MAX_ARRAYS_BYTES = 2 * 2**30


def software_version() -> str:
    try:
        return metadata.version("labctl")
    except metadata.PackageNotFoundError:
        return "unknown"


@dataclass
class CalibrationRecord:
    kind: str
    device: DeviceInfo
    wavelength_m: float
    method: str
    params: dict[str, Any]
    residuals: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    software: dict[str, str] = field(default_factory=lambda: {"labctl": software_version()})
    id: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise CalibrationRecordError(f"unknown calibration kind {self.kind!r}; expected one of {KINDS}")
        if not self.id:
            stamp = re.sub(r"[^0-9T]", "", self.created)[:15]
            serial = re.sub(r"[^A-Za-z0-9_-]", "_", self.device.serial)
            self.id = f"{self.kind}-{serial}-{stamp}"

    # -- checks -----------------------------------------------------------------------------------
    def mismatch(self, device: DeviceInfo | None = None, wavelength_m: float | None = None) -> str | None:
        """Why this record does not fit ``device`` / ``wavelength_m`` (None when it fits)."""
        if device is not None:
            mine = self.device.as_dict()
            theirs = device.as_dict()
            diff = [k for k in ("driver", "model", "serial") if mine[k] != theirs[k]]
            if diff:
                what = ", ".join(f"{k} {mine[k]!r} vs device {theirs[k]!r}" for k in diff)
                return f"made for another device ({what})"
        if wavelength_m is not None and abs(wavelength_m - self.wavelength_m) > WAVELENGTH_RTOL * self.wavelength_m:
            return f"made at {self.wavelength_m * 1e9:.1f} nm, the bench runs at {wavelength_m * 1e9:.1f} nm"
        return None

    # -- files ------------------------------------------------------------------------------------
    def save(self, out_dir: str | Path) -> Path:
        """Write ``<id>.json`` (+ ``<id>.npz``) into ``out_dir``; returns the JSON path."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{self.id}.json"
        arrays_name = None
        if self.arrays:
            arrays_name = f"{self.id}.npz"
            np.savez_compressed(out / arrays_name, **{k: np.asarray(v) for k, v in self.arrays.items()})
        doc = {
            "format": FORMAT,
            "id": self.id,
            "kind": self.kind,
            "device": self.device.as_dict(),
            "wavelength_m": self.wavelength_m,
            "created": self.created,
            "software": self.software,
            "method": self.method,
            "params": self.params,
            "residuals": self.residuals,
            "arrays": arrays_name,
            "array_names": sorted(self.arrays),
        }
        path.write_text(json.dumps(doc, indent=2, default=_jsonable))
        return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in a calibration record's JSON")


def _read_limited(path: Path, limit: int) -> bytes:
    """The bytes of ``path``, refused unless it is a regular file of at most ``limit`` bytes
    (``/dev/zero``, a FIFO or a huge file is never read to its end)."""
    try:
        info = path.stat()  # before opening: a FIFO would block the open
        if not stat.S_ISREG(info.st_mode):
            raise CalibrationRecordError(f"calibration record {path}: not a regular file")
        if info.st_size > limit:
            raise CalibrationRecordError(f"calibration record {path}: {info.st_size} bytes, over the {limit}-byte limit")
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise CalibrationRecordError(f"calibration record {path}: cannot read ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise CalibrationRecordError(f"calibration record {path}: over the {limit}-byte limit")
    return data


def _load_arrays(path: Path, name: Any) -> dict[str, np.ndarray]:
    """The arrays of the record ``path``: its ``arrays`` entry names an ``.npz`` in the record's own
    folder, a regular file whose arrays unpack to at most :data:`MAX_ARRAYS_BYTES`; plain data only
    (no pickled objects)."""
    if not name:
        return {}
    folder = path.parent.resolve()
    if not isinstance(name, str) or "\0" in name:
        raise CalibrationRecordError(f"calibration record {path}: arrays = {name!r} is not a file name")
    npz_path = (folder / name).resolve()
    if not npz_path.is_relative_to(folder):
        raise CalibrationRecordError(
            f"calibration record {path}: arrays = {name!r} leads outside the record's folder {folder} (to {npz_path})"
        )
    try:
        info = npz_path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise CalibrationRecordError(f"calibration record {path}: arrays file {npz_path} is not a regular file")
        if info.st_size > MAX_ARRAYS_BYTES:
            raise CalibrationRecordError(
                f"calibration record {path}: arrays file {npz_path} has {info.st_size} bytes, over the {MAX_ARRAYS_BYTES}-byte limit"
            )
        with npz_path.open("rb") as f:
            loaded = np.load(f, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise CalibrationRecordError(f"calibration record {path}: arrays file {npz_path} is not an .npz archive")
            with loaded as npz:
                unpacked = sum(npz.zip.getinfo(member).file_size for member in npz.zip.namelist())
                if unpacked > MAX_ARRAYS_BYTES:
                    raise CalibrationRecordError(
                        f"calibration record {path}: arrays file {npz_path} unpacks to {unpacked} bytes, over the "
                        f"{MAX_ARRAYS_BYTES}-byte limit"
                    )
                return {k: npz[k] for k in npz.files}
    except CalibrationRecordError:
        raise
    except OSError as exc:
        raise CalibrationRecordError(f"calibration record {path}: cannot read arrays file {npz_path} ({exc.strerror or exc})") from None
    except (ValueError, zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise CalibrationRecordError(f"calibration record {path}: arrays file {npz_path} is not a plain .npz ({exc})") from None


def load_record(
    path: str | Path,
    device: DeviceInfo | None = None,
    wavelength_m: float | None = None,
    force: bool = False,
    kind: str | None = None,
) -> CalibrationRecord:
    """Read a record; refuse it (:class:`CalibrationMismatch`) for another device or wavelength unless ``force``."""
    path = Path(path)
    if path.suffix == ".npz":
        path = path.with_suffix(".json")
    try:
        doc = json.loads(_read_limited(path, MAX_RECORD_BYTES).decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise CalibrationRecordError(f"calibration record {path}: not UTF-8 text ({exc.reason} at offset {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise CalibrationRecordError(f"calibration record {path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CalibrationRecordError(f"calibration record {path}: not a {FORMAT} file")
    arrays = _load_arrays(path, doc.get("arrays"))
    try:
        record = CalibrationRecord(
            kind=doc["kind"],
            device=DeviceInfo(**doc["device"]),
            wavelength_m=float(doc["wavelength_m"]),
            method=doc["method"],
            params=doc["params"],
            residuals=doc["residuals"],
            arrays=arrays,
            created=doc["created"],
            software=doc["software"],
            id=doc["id"],
        )
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise CalibrationRecordError(f"calibration record {path}: incomplete or corrupt ({type(exc).__name__}: {exc})") from None
    if not (math.isfinite(record.wavelength_m) and record.wavelength_m > 0):
        raise CalibrationRecordError(f"calibration record {path}: wavelength_m = {record.wavelength_m!r} is not a positive number")
    for key in ("params", "residuals"):
        if not isinstance(getattr(record, key), dict):
            raise CalibrationRecordError(f"calibration record {path}: {key} is not a JSON object")
    if kind is not None and record.kind != kind:
        raise CalibrationRecordError(f"calibration record {path} is a {record.kind!r} record, not {kind!r}")
    why = record.mismatch(device, wavelength_m)
    if why and not force:
        raise CalibrationMismatch(f"calibration record {path} was {why}; recalibrate, or load it with force=True")
    return record
