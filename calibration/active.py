"""The calibration records a bench file names as active, and applying the SLM phase table and the
input modulator's amplitude table.

    [calibration]
    input_response = "input_response-....json"   # paths relative to the bench file
    slm_phase = "slm_phase-....json"
    camera = "camera-....json"
    registration = "registration-....json"
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from calibration.errors import CalibrationMismatch, CalibrationRecordError
from calibration.record_checks import check_camera_record, check_registration_record
from calibration.records import KINDS, ROLE_OF_KIND, CalibrationRecord, load_record
from drivers.bench import Bench, BenchSpec
from drivers.amplitude_table import AmplitudeTable
from drivers.device import DeviceInfo
from drivers.errors import AmplitudeTableError
from drivers.phase_table import PhaseTable


@dataclass
class ActiveCalibration:
    """The active record of each kind the bench file names (a kind it does not name is absent)."""

    by_kind: dict[str, CalibrationRecord] = field(default_factory=dict)

    def of_kind(self, kind: str) -> CalibrationRecord | None:
        return self.by_kind.get(kind)

    @property
    def slm_phase(self) -> CalibrationRecord | None:
        return self.of_kind("slm_phase")

    @property
    def camera(self) -> CalibrationRecord | None:
        return self.of_kind("camera")

    @property
    def registration(self) -> CalibrationRecord | None:
        return self.of_kind("registration")

    @property
    def input_response(self) -> CalibrationRecord | None:
        return self.of_kind("input_response")


def active_records(spec: BenchSpec, bench: Bench | None = None, force: bool = False,
                   kinds: tuple[str, ...] = KINDS) -> ActiveCalibration:
    """Load the records of ``kinds`` named in the bench file's [calibration] table.

    With an open ``bench``, each record's device identity is checked against the device it belongs
    to (CalibrationMismatch unless ``force``); the wavelength is always checked against [optics].
    Camera and registration records are checked for content (:mod:`calibration.record_checks`),
    against the open camera's sensor and input modulator when there is a ``bench``.
    """
    unknown = set(spec.calibration) - set(KINDS)
    if unknown:
        raise CalibrationRecordError(f"bench file {spec.source}: unknown [calibration] key(s) {sorted(unknown)}; expected {list(KINDS)}")
    active = ActiveCalibration()
    for kind, path in spec.calibration.items():
        if kind not in kinds:
            continue
        device = bench.devices[ROLE_OF_KIND[kind]].info if bench is not None else None
        record = load_record(path, device=device, wavelength_m=spec.optics.wavelength_m, force=force, kind=kind)
        if kind == "camera":
            check_camera_record(path, record, bench.camera.grid if bench is not None else None)
        elif kind == "registration":
            grids = (bench.input_slm.grid, bench.camera.grid) if bench is not None else (None, None)
            check_registration_record(path, record, *grids)
        active.by_kind[kind] = record
    return active


def active_phase_table(spec: BenchSpec, slm: DeviceInfo, bit_depth: int) -> PhaseTable:
    """The phase table the bench file makes active for the Fourier SLM ``slm`` (identity and
    wavelength checked), or the linear one of ``bit_depth`` bits when it names none; reads the
    record only, opens no device."""
    path = spec.calibration.get("slm_phase")
    if not path:
        return PhaseTable.linear(bit_depth)
    return phase_table_from_record(load_record(path, device=slm, wavelength_m=spec.optics.wavelength_m, kind="slm_phase"))


def active_amplitude_table(spec: BenchSpec, modulator: DeviceInfo, bit_depth: int) -> AmplitudeTable:
    """The amplitude table the bench file makes active for the input modulator ``modulator`` (identity
    and wavelength checked), or the linear one of ``bit_depth`` bits when it names none; reads the
    record only, opens no device."""
    path = spec.calibration.get("input_response")
    if not path:
        return AmplitudeTable.linear(bit_depth)
    return amplitude_table_from_record(load_record(path, device=modulator, wavelength_m=spec.optics.wavelength_m, kind="input_response"))


def phase_table_from_record(record: CalibrationRecord) -> PhaseTable:
    if record.kind != "slm_phase":
        raise CalibrationRecordError(f"record {record.id} is a {record.kind!r} record, not an SLM phase calibration")
    try:
        gray = np.asarray(record.arrays["table_gray"])
        bit_depth = int(record.params["bit_depth"])
    except KeyError as exc:
        raise CalibrationRecordError(f"SLM phase record {record.id} lacks {exc}") from None
    return PhaseTable(gray=gray, bit_depth=bit_depth, record_id=record.id,
                      metadata={"wavelength_m": record.wavelength_m, "created": record.created},
                      fringing_sigma_px=float(record.params.get("fringing_sigma_px", 0.0)),
                      fill_factor=float(record.params.get("fill_factor", 1.0)))


def apply_phase_table(bench: Bench, record: CalibrationRecord, force: bool = False) -> None:
    """Make ``record``'s table the Fourier SLM's active phase table (device and wavelength checked)."""
    _check_device(record, bench.fourier_slm, bench, "SLM phase", force)
    bench.fourier_slm.phase_table = phase_table_from_record(record)


def _check_device(record: CalibrationRecord, slm, bench: Bench, what: str, force: bool) -> None:
    """Refuse ``record`` unless it was measured on ``slm`` at the bench's wavelength (or ``force``)."""
    why = record.mismatch(slm.info, bench.spec.optics.wavelength_m)
    if why and not force:
        raise CalibrationMismatch(f"{what} record {record.id} was {why}; recalibrate, or force it")


class UnmeasuredLeakWarning(UserWarning):
    """An input-response record made before the dark pixels' leak was measured."""


def amplitude_table_from_record(record: CalibrationRecord) -> AmplitudeTable:
    """The input modulator's amplitude → gray table of an ``input_response`` record; its bit depth is
    that of the modulator it measured (one measured amplitude per gray level in ``amplitude``). A
    record made before the leak was measured gives a table with none, and a warning: its amplitudes
    were summed over the whole frame, so its darkest levels are off too."""
    if record.kind != "input_response":
        raise CalibrationRecordError(f"record {record.id} is a {record.kind!r} record, not an input-response calibration")
    if "leak_amplitude" not in record.params:
        warnings.warn(f"input-response record {record.id} predates the measurement of the dark pixels' leak: the twin "
                      "assumes none and its darkest levels read high; recalibrate the input response "
                      "(labctl calibrate input)", UnmeasuredLeakWarning, stacklevel=2)
    try:
        gray = np.asarray(record.arrays["table_gray"])
        levels = int(np.asarray(record.arrays["amplitude"]).size)
    except KeyError as exc:
        raise CalibrationRecordError(f"input-response record {record.id} lacks {exc}") from None
    bit_depth = levels.bit_length() - 1
    if levels < 2 or 2**bit_depth != levels:
        raise CalibrationRecordError(
            f"input-response record {record.id}: {levels} measured amplitudes, not one per gray level of a modulator"
        )
    try:
        leak = float(record.params.get("leak_amplitude", 0.0))
    except (TypeError, ValueError):
        raise CalibrationRecordError(
            f"input-response record {record.id}: leak_amplitude {record.params['leak_amplitude']!r:.80} is not a number"
        ) from None
    try:
        return AmplitudeTable(gray=gray, bit_depth=bit_depth, record_id=record.id,
                              metadata={"wavelength_m": record.wavelength_m, "created": record.created,
                                        "model": record.params.get("model")},
                              leak_amplitude=leak, leak_adds=bool(record.params.get("leak_adds", False)))
    except AmplitudeTableError as exc:
        raise CalibrationRecordError(f"input-response record {record.id}: {exc}") from None


def apply_amplitude_table(bench: Bench, record: CalibrationRecord, force: bool = False) -> None:
    """Make ``record``'s table the input modulator's active amplitude table (device and wavelength checked)."""
    _check_device(record, bench.input_slm, bench, "input-response", force)
    bench.input_slm.amplitude_table = amplitude_table_from_record(record)
