"""Calibration records: one JSON file per calibration, its arrays in an ``.npz`` beside it.

Format (``<id>.json``)::

    {"format": "labctl-calibration/1", "id": ..., "kind": "slm_phase" | "camera" | "registration",
     "device": {"driver", "vendor", "model", "serial"}, "wavelength_m": ..., "created": ISO-8601,
     "software": {"labctl": version}, "method": ..., "params": {...}, "residuals": {...},
     "arrays": "<id>.npz" | null}

``params`` and ``residuals`` hold scalars and short lists; anything array-like (phase tables,
dark maps, spot lists) lives in the ``.npz`` under the names listed in ``arrays``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from calibration.errors import CalibrationMismatch, CalibrationRecordError
from drivers.device import DeviceInfo

FORMAT = "labctl-calibration/1"
KINDS = ("slm_phase", "camera", "registration")
#: relative wavelength difference below which two wavelengths count as the same
WAVELENGTH_RTOL = 1e-3


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
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise CalibrationRecordError(f"calibration record {path}: cannot read ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise CalibrationRecordError(f"calibration record {path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CalibrationRecordError(f"calibration record {path}: not a {FORMAT} file")
    try:
        arrays: dict[str, np.ndarray] = {}
        if doc.get("arrays"):
            with np.load(path.parent / doc["arrays"]) as npz:
                arrays = {k: npz[k] for k in npz.files}
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
    if kind is not None and record.kind != kind:
        raise CalibrationRecordError(f"calibration record {path} is a {record.kind!r} record, not {kind!r}")
    why = record.mismatch(device, wavelength_m)
    if why and not force:
        raise CalibrationMismatch(f"calibration record {path} was {why}; recalibrate, or load it with force=True")
    return record
