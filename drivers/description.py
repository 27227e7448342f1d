"""The bench description: a frozen, serialisable snapshot of a bench as its devices describe
themselves — optics, each device's identity, pixel grid, bit depth and sequence length — and the
calibration records in force.

It is taken when a bench is opened (``calibration.session.open_session``) and saved beside the bench
file (``<bench>.description.json``), inside calibration records and mask files. Everything that only
needs the bench's geometry — models, training, mask export, a mask file's bench check — reads a
description and never opens hardware.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from drivers.bench import Bench, BenchSpec, OpticsSpec
from drivers.camera import Camera
from drivers.capabilities import HardwareSequence
from drivers.device import DeviceInfo
from drivers.errors import LabctlError
from drivers.slm import SLM, PixelGrid

FORMAT = "labctl-bench-description/1"
#: roles whose pixel grid the optics need
IMAGING_ROLES = ("input_slm", "fourier_slm", "camera")


class BenchDescriptionError(LabctlError, ValueError):
    """A bench description is malformed, or does not describe the bench it is used for."""


@dataclass(frozen=True)
class DeviceDescription:
    """One device: identity, and for SLMs and cameras the pixel grid and bit depth."""

    identity: DeviceInfo
    rows: int | None = None
    cols: int | None = None
    pitch_m: float | None = None
    bit_depth: int | None = None
    sequence_length: int | None = None  # SLMs: longest hardware sequence (1: one pattern at a time)

    @property
    def grid(self) -> PixelGrid:
        if self.rows is None or self.cols is None or self.pitch_m is None:
            raise BenchDescriptionError(f"device {self.identity.model} {self.identity.serial} has no pixel grid")
        return PixelGrid(self.rows, self.cols, self.pitch_m)


@dataclass(frozen=True)
class BenchDescription:
    name: str
    source: str
    bench_sha256: str  # of the parsed bench file: which drivers, arguments and records
    optics: OpticsSpec
    devices: dict[str, DeviceDescription]
    calibration: dict[str, str | None] = field(default_factory=dict)  # kind → record id in force

    def __post_init__(self) -> None:
        missing = [role for role in IMAGING_ROLES if role not in self.devices]
        if missing:
            raise BenchDescriptionError(f"bench description of {self.source} lacks the device(s) {missing}")
        for role in IMAGING_ROLES:
            d = self.devices[role]
            values = (d.rows, d.cols, d.pitch_m, d.bit_depth)
            if any(v is None for v in values) or d.rows < 1 or d.cols < 1 or not (math.isfinite(d.pitch_m) and d.pitch_m > 0):
                raise BenchDescriptionError(f"bench description of {self.source}: {role} has no valid grid and bit depth ({values})")

    # -- taking one --------------------------------------------------------------------------------
    @classmethod
    def of(cls, bench: Bench, calibration: dict[str, str | None] | None = None) -> BenchDescription:
        """The description of ``bench`` (open or closed: identity, grid and bit depth are what a
        closed device still answers)."""
        devices = {}
        for role, device in bench.devices.items():
            grid = _grid_of(device)
            devices[role] = DeviceDescription(
                identity=device.info,
                rows=grid.rows if grid else None, cols=grid.cols if grid else None, pitch_m=grid.pitch_m if grid else None,
                bit_depth=device.bit_depth if grid else None,
                sequence_length=(device.max_sequence_length if isinstance(device, HardwareSequence) else 1)
                if isinstance(device, SLM) else None,
            )
        spec = bench.spec
        return cls(spec.name, spec.source, spec_digest(spec), spec.optics, devices, dict(calibration or {}))

    # -- what the optics need ------------------------------------------------------------------------
    def layout_numbers(self) -> dict[str, float | int]:
        """Wavelength, focal lengths, the three imaging devices' grids and the Fourier SLM's bit depth."""
        f, i, c = self.devices["fourier_slm"], self.devices["input_slm"], self.devices["camera"]
        return dict(
            wavelength_m=self.optics.wavelength_m, f1_m=self.optics.f1_m, f2_m=self.optics.f2_m,
            fourier_rows=f.rows, fourier_cols=f.cols, fourier_pitch_m=f.pitch_m, fourier_bit_depth=f.bit_depth,
            input_rows=i.rows, input_cols=i.cols, input_pitch_m=i.pitch_m,
            camera_rows=c.rows, camera_cols=c.cols, camera_pitch_m=c.pitch_m,
        )

    # -- files -------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "name": self.name, "source": self.source, "bench_sha256": self.bench_sha256,
            "optics": asdict(self.optics),
            "devices": {role: {**asdict(d), "identity": d.identity.as_dict()} for role, d in self.devices.items()},
            "calibration": dict(self.calibration),
        }

    @classmethod
    def from_dict(cls, doc: Any, source: str = "bench description") -> BenchDescription:
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
            raise BenchDescriptionError(f"{source} is not a bench description of format {FORMAT} (found {found!r})")
        try:
            devices = {
                role: DeviceDescription(**{**d, "identity": DeviceInfo(**d["identity"])}) for role, d in doc["devices"].items()
            }
            return cls(
                name=str(doc["name"]), source=str(doc["source"]), bench_sha256=str(doc["bench_sha256"]),
                optics=OpticsSpec(**doc["optics"]), devices=devices, calibration=dict(doc.get("calibration", {})),
            )
        except BenchDescriptionError:
            raise
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise BenchDescriptionError(f"{source}: malformed bench description ({type(exc).__name__}: {exc})") from None

    def save(self, path: str | Path) -> Path:
        """Write the description as JSON (atomically: a reader never sees half a file)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".partial")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> BenchDescription:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
            doc = json.loads(text)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BenchDescriptionError(f"{path}: cannot read a bench description ({exc})") from None
        return cls.from_dict(doc, str(path))

    def describes(self, spec: BenchSpec) -> bool:
        """Whether this description was taken from the bench file ``spec`` as it is now."""
        return self.bench_sha256 == spec_digest(spec)


def _grid_of(device: object) -> PixelGrid | None:
    """The pixel grid of an SLM or camera; None for an instrument (shutter, power meter)."""
    return device.grid if isinstance(device, (SLM, Camera)) else None


def spec_digest(spec: BenchSpec) -> str:
    """SHA-256 of the parsed bench file (drivers, arguments, optics, calibration records named)."""
    return hashlib.sha256(json.dumps(spec.raw, sort_keys=True, default=str).encode()).hexdigest()


def description_path(bench_file: str | Path) -> Path:
    """Where the description of the bench file ``bench_file`` is saved: beside it."""
    bench_file = Path(bench_file)
    return bench_file.with_name(bench_file.stem + ".description.json")
