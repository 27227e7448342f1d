"""The mask file: what the Fourier SLM shows for one student, and everything needed to trust it.

One HDF5 file per export::

    /phase_rad        (rows, cols) float32, the phase pattern in [0, 2π); (groups, rows, cols) when the
                      channels are multiplexed (one mask and camera frame per channel group)
    /gray             the same shape, uint16: that phase through the active phase table
    attrs             format, method, model (kind, checkpoint path and SHA-256), layout (SLM and
                      camera geometry, wavelength, focal lengths, image placement, tiles), the
                      Fourier SLM's identity, the calibration ids in force, provenance

A SHA-256 over the arrays and attributes (attr ``payload_sha256``) is verified on load. Before anything
is shown, :meth:`MaskFile.check_bench` compares the file against the bench's description: SLM geometry, bit
depth, wavelength, the phase table it was made with, and that the gray levels are the phase pattern
through that table (:meth:`MaskFile.check_gray`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from drivers.description import BenchDescription
from drivers.errors import LabctlError
from drivers.phase_table import TWO_PI, PhaseTable
from labctl.optics.layout import OpticalLayout
from labctl.records.checksums import arrays_digest

FORMAT = "labctl-masks/1"
METHODS = ("sclc-double-phase", "sclc-iterative", "sclc-optimised", "optics-aware")
_CHECKSUM = "payload_sha256"
#: a gray level may differ from the table's at its phase by one table step (float32 rounding of
#: phases that fall on a step's edge); pixels further off make the mask "not its phase"
GRAY_TOLERANCE_STEPS = 1


class MaskFileError(LabctlError, ValueError):
    """The mask file is unreadable, malformed, or made for another bench."""


@dataclass
class MaskFile:
    phase_rad: np.ndarray
    gray: np.ndarray
    method: str
    layout: OpticalLayout
    model: dict[str, Any]  # kind, checkpoint, sha256
    slm: dict[str, Any]  # identity, rows, cols, pitch_m, bit_depth
    calibration: dict[str, str | None]  # slm_phase / camera / registration record ids
    extra: dict[str, Any] = field(default_factory=dict)  # encoding scale, provenance, ...
    source: str = ""  # the file it was loaded from

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise MaskFileError(f"unknown mask method {self.method!r}; known: {', '.join(METHODS)}")
        groups = self.layout.channel_groups
        panel = (self.layout.fourier_rows, self.layout.fourier_cols)
        expected = panel if groups == 1 else (groups, *panel)
        for name, arr in (("phase_rad", self.phase_rad), ("gray", self.gray)):
            if np.asarray(arr).shape != expected:
                raise MaskFileError(
                    f"{name} has shape {np.asarray(arr).shape}; the layout's {self.layout.channels} channels in "
                    f"{groups} frame(s) on a {panel[0]}x{panel[1]} Fourier SLM need {expected}"
                )
        if not np.all(np.isfinite(self.phase_rad)):
            raise MaskFileError("the phase pattern holds NaN or inf")
        if self.gray.dtype.kind not in "ui" or self.gray.min() < 0 or self.gray.max() >= 2**self.layout.fourier_bit_depth:
            raise MaskFileError(f"gray levels outside 0..{2**self.layout.fourier_bit_depth - 1} or not integers")

    @property
    def frames_per_input(self) -> int:
        """Masks shown (and camera frames taken) per input: one per channel group."""
        return self.layout.channel_groups

    def group_gray(self) -> list[np.ndarray]:
        """The gray levels as one (rows, cols) mask per channel group. One group's is ``gray`` itself:
        the acquirer tells masks apart by identity, so showing it again costs no SLM write."""
        return [self.gray] if self.gray.ndim == 2 else list(self.gray)

    # -- disk --------------------------------------------------------------------------------------
    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        path = Path(path)
        if path.exists() and not overwrite:
            raise MaskFileError(f"{path} exists; choose another --out (mask files are never overwritten)")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".partial")
        phase, gray = self.phase_rad.astype(np.float32), self.gray.astype(np.uint16)
        attrs = {"format": FORMAT, "method": self.method, "layout": json.dumps(self.layout.to_dict())}
        attrs |= {key: json.dumps(getattr(self, key), default=str) for key in ("model", "slm", "calibration", "extra")}
        with h5py.File(tmp, "w") as h5:
            h5.attrs.update(attrs)
            h5.attrs[_CHECKSUM] = arrays_digest([phase, gray], attrs)
            h5.create_dataset("phase_rad", data=phase)
            h5.create_dataset("gray", data=gray)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> MaskFile:
        path = Path(path)
        if not path.is_file():
            raise MaskFileError(f"no mask file at {path}")
        try:
            with h5py.File(path, "r") as h5:
                if h5.attrs.get("format") != FORMAT:
                    raise MaskFileError(f"{path} is not a labctl mask file (format {h5.attrs.get('format')!r})")
                phase, gray = h5["phase_rad"][...], h5["gray"][...]
                masks = cls(
                    phase_rad=phase.astype(np.float64),
                    gray=gray,
                    method=str(h5.attrs["method"]),
                    layout=OpticalLayout.from_dict(json.loads(h5.attrs["layout"])),
                    model=json.loads(h5.attrs["model"]),
                    slm=json.loads(h5.attrs["slm"]),
                    calibration=json.loads(h5.attrs["calibration"]),
                    extra=json.loads(h5.attrs["extra"]),
                    source=str(path),
                )
                attrs = {key: h5.attrs[key] for key in h5.attrs if key != _CHECKSUM}
                stored = h5.attrs.get(_CHECKSUM)
        except OSError as exc:
            raise MaskFileError(f"{path} is not a readable HDF5 file: {exc}") from None
        except (KeyError, json.JSONDecodeError, TypeError, ValueError, UnicodeDecodeError) as exc:
            if isinstance(exc, MaskFileError):  # the content checks of __post_init__ do not know the file
                if str(path) in str(exc):
                    raise
                raise MaskFileError(f"{path}: {exc}") from None
            raise MaskFileError(f"{path} is incomplete or malformed: {type(exc).__name__}: {exc}") from None
        if stored != arrays_digest([phase, gray], attrs):
            raise MaskFileError(
                f"{path}: its content fails its checksum ({_CHECKSUM} {str(stored)[:12]!r}): the file was damaged or "
                "edited after export; export the masks again"
            )
        return masks

    # -- checks against the bench ---------------------------------------------------------------------
    def check_bench(self, bench: BenchDescription, table: PhaseTable) -> None:
        """Raise MaskFileError unless this mask was made for the bench ``bench`` describes, whose
        Fourier SLM uses ``table``: Fourier SLM (geometry, bit depth, phase table), input modulator
        and camera geometry, wavelength and focal lengths. Reads the description only: no device."""
        lay = self.layout
        problems = []
        fourier = bench.devices["fourier_slm"]
        for what, role, rows, cols, pitch in (
            ("Fourier SLM", "fourier_slm", lay.fourier_rows, lay.fourier_cols, lay.fourier_pitch_m),
            ("input modulator", "input_slm", lay.input_rows, lay.input_cols, lay.input_pitch_m),
            ("camera", "camera", lay.camera_rows, lay.camera_cols, lay.camera_pitch_m),
        ):
            grid = bench.devices[role].grid
            if (grid.rows, grid.cols) != (rows, cols) or not np.isclose(grid.pitch_m, pitch, rtol=1e-6):
                problems.append(
                    f"{what} is {grid.rows}x{grid.cols} @ {grid.pitch_m:g} m, mask made for {rows}x{cols} @ {pitch:g} m"
                )
        if fourier.bit_depth != lay.fourier_bit_depth:
            problems.append(f"Fourier SLM is {fourier.bit_depth}-bit, mask is {lay.fourier_bit_depth}-bit")
        optics = bench.optics
        for name, bench_value, mask_value in (
            ("wavelength", optics.wavelength_m, lay.wavelength_m), ("f1", optics.f1_m, lay.f1_m), ("f2", optics.f2_m, lay.f2_m)
        ):
            if not np.isclose(bench_value, mask_value, rtol=1e-6):
                problems.append(f"bench {name} {bench_value:g} m, mask made for {mask_value:g} m")
        if table.record_id != self.calibration.get("slm_phase", "linear"):
            problems.append(
                f"mask gray levels were made with phase table {self.calibration.get('slm_phase')!r}, "
                f"the SLM now uses {table.record_id!r} (export the masks again for this calibration)"
            )
        if problems:
            raise MaskFileError(f"{self._name()} does not fit the bench: " + "; ".join(problems))
        self.check_gray(table)

    def check_gray(self, table: PhaseTable) -> None:
        """Raise MaskFileError unless the gray levels are the phase pattern through ``table`` (the
        table the mask says it was made with): otherwise the SLM would show another mask than the
        one the file describes and was checked as."""
        if table.bit_depth != self.layout.fourier_bit_depth:
            raise MaskFileError(
                f"{self._name()}: phase table {table.record_id!r} is {table.bit_depth}-bit, the mask {self.layout.fourier_bit_depth}-bit"
            )
        k = table.gray.shape[-1]
        idx = np.rint(np.mod(self.phase_rad, TWO_PI) / TWO_PI * k).astype(np.int64) % k
        near = np.zeros(self.gray.shape, dtype=bool)
        for step in range(-GRAY_TOLERANCE_STEPS, GRAY_TOLERANCE_STEPS + 1):
            near |= table.gray_for_phase((idx + step) * (TWO_PI / k)) == self.gray
        off = int((~near).sum())
        if off:
            expected = table.gray_for_phase(self.phase_rad).astype(np.int64)
            worst = int(np.abs(expected - self.gray.astype(np.int64)).max())
            raise MaskFileError(
                f"{self._name()}: {off} of {self.gray.size} gray levels ({100 * off / self.gray.size:.1f} %) are not its "
                f"phase pattern through phase table {table.record_id!r} (largest difference {worst} gray levels); "
                "export the masks again"
            )

    def _name(self) -> str:
        return f"mask file {self.source}" if self.source else "mask"
