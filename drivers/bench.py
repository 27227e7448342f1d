"""The bench description file (TOML) and the factory that builds a bench of devices from it.

    [optics]                 # the 4f geometry that masks are computed for
    wavelength_m = 532e-9
    f1_m = 0.05
    f2_m = 0.05

    [input_slm]              # one table per role: `driver` plus that driver's arguments
    driver = "mock"
    seed = 3

    [fourier_slm]
    driver = "mock"

    [camera]
    driver = "mock"

    [shutter]                # optional instruments
    driver = "mock"

Roles ``input_slm``, ``fourier_slm`` and ``camera`` are required; ``shutter`` and ``power_meter``
are optional. Devices that share a physical model (the simulated bench) find each other through the
:class:`BenchContext` handed to them, never through module globals.
"""

from __future__ import annotations

import inspect
import stat
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, Self

from drivers.camera import Camera
from drivers.device import Device
from drivers.errors import BenchFileError
from drivers.instruments import PowerMeter, Shutter
from drivers.limits import FOCAL_LENGTH_RANGE_M, WAVELENGTH_RANGE_M, OutOfRange, finite, non_finite_entries
from drivers.registry import DeviceKind, UnknownDriver, driver_class
from drivers.slm import SLM, SLMRole

#: role in the bench file → (device kind, whether required, SLM role passed to the driver)
ROLES: dict[str, tuple[DeviceKind, bool, SLMRole | None]] = {
    "input_slm": (DeviceKind.SLM, True, SLMRole.INPUT),
    "fourier_slm": (DeviceKind.SLM, True, SLMRole.FOURIER),
    "camera": (DeviceKind.CAMERA, True, None),
    "shutter": (DeviceKind.SHUTTER, False, None),
    "power_meter": (DeviceKind.POWER_METER, False, None),
}
#: tables that are not devices
OTHER_TABLES = {"optics", "calibration", "bench"}
#: the largest bench file read (a bench file is a few hundred bytes)
MAX_BENCH_FILE_BYTES = 1 << 20


@dataclass(frozen=True)
class OpticsSpec:
    """Geometry of the 4f system: wavelength and the two lenses' focal lengths."""

    wavelength_m: float = 532e-9
    f1_m: float = 0.05
    f2_m: float = 0.05

    def __post_init__(self) -> None:
        for key, (lo, hi) in (("wavelength_m", WAVELENGTH_RANGE_M), ("f1_m", FOCAL_LENGTH_RANGE_M), ("f2_m", FOCAL_LENGTH_RANGE_M)):
            value = getattr(self, key)
            try:
                finite(key, value, lo, hi)
            except OutOfRange:
                raise OutOfRange(
                    f"[optics] {key} must be a positive finite number of metres in [{lo:g}, {hi:g}]; got {value!r}"
                ) from None


@dataclass
class BenchContext:
    """What devices of one bench may share: the optics spec and named shared objects."""

    optics: OpticsSpec
    _shared: dict[str, Any] = field(default_factory=dict)

    def shared(self, key: str, factory: Callable[[], Any]) -> Any:
        """The object stored under ``key``, created by ``factory`` on first request."""
        if key not in self._shared:
            self._shared[key] = factory()
        return self._shared[key]


@dataclass(frozen=True)
class DeviceSpec:
    role: str
    driver: str
    args: dict[str, Any]


@dataclass(frozen=True)
class BenchSpec:
    """A parsed, validated bench file."""

    source: str
    name: str
    optics: OpticsSpec
    devices: dict[str, DeviceSpec]
    calibration: dict[str, str]
    raw: dict[str, Any]
    file: Path | None = None  # the bench file, when it was read from one

    @classmethod
    def from_file(cls, path: str | Path) -> BenchSpec:
        """Read a bench file: a regular file of at most :data:`MAX_BENCH_FILE_BYTES`, UTF-8 TOML."""
        path = Path(path)
        try:
            if not stat.S_ISREG(path.stat().st_mode):  # before opening: a FIFO would block the open
                raise BenchFileError(str(path), "not a regular file")
            with path.open("rb") as f:
                data = f.read(MAX_BENCH_FILE_BYTES + 1)
        except OSError as exc:
            raise BenchFileError(str(path), f"cannot read: {exc.strerror or exc}") from None
        if len(data) > MAX_BENCH_FILE_BYTES:
            raise BenchFileError(str(path), f"larger than the {MAX_BENCH_FILE_BYTES} bytes a bench file may have")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BenchFileError(
                str(path), f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); save it as UTF-8"
            ) from None
        return replace(cls.from_toml(text, source=str(path), base_dir=path.parent), file=path)

    @classmethod
    def default(cls) -> BenchSpec:
        """The embedded simulated bench."""
        text = resources.files("mock_hw").joinpath("default_bench.toml").read_text()
        return cls.from_toml(text, source="<embedded mock bench>")

    @classmethod
    def from_toml(cls, text: str, source: str = "<string>", base_dir: Path | None = None) -> BenchSpec:
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise BenchFileError(source, f"not valid TOML: {exc}") from None
        unknown = set(raw) - set(ROLES) - OTHER_TABLES
        if unknown:
            raise BenchFileError(
                source, f"unknown table(s) {sorted(unknown)}; expected roles {sorted(ROLES)} and {sorted(OTHER_TABLES)}"
            )
        try:
            optics = OpticsSpec(**raw.get("optics", {}))
        except TypeError as exc:
            raise BenchFileError(source, f"[optics]: {exc}; keys are wavelength_m, f1_m, f2_m") from None
        except ValueError as exc:
            raise BenchFileError(source, str(exc)) from None
        devices: dict[str, DeviceSpec] = {}
        for role, (kind, required, _) in ROLES.items():
            table = raw.get(role)
            if table is None:
                if required:
                    raise BenchFileError(source, f"missing required table [{role}] (needs at least driver = \"NAME\")")
                continue
            if not isinstance(table, dict) or "driver" not in table:
                raise BenchFileError(source, f"[{role}] has no driver = \"NAME\" entry")
            args = dict(table)
            driver = args.pop("driver")
            if not isinstance(driver, str):
                raise BenchFileError(source, f"[{role}] driver must be a string; got {driver!r}")
            try:
                cls_ = driver_class(kind, driver)
            except UnknownDriver as exc:
                raise BenchFileError(source, f"[{role}] {exc}") from None
            _check_arguments(source, role, cls_, args)
            _check_finite(source, role, args)
            devices[role] = DeviceSpec(role, driver, args)
        calibration = _calibration_paths(source, raw.get("calibration", {}), base_dir)
        name = str(raw.get("bench", {}).get("name", Path(source).stem if base_dir else "mock"))
        return cls(source=source, name=name, optics=optics, devices=devices, calibration=calibration, raw=raw)

    def open(self) -> Bench:
        """Build and open every device; on failure, close those already opened and re-raise.

        The devices come up uncalibrated: ``calibration.session.open_session`` opens a bench and
        applies its active calibration records."""
        context = BenchContext(optics=self.optics)
        bench = Bench(spec=self, context=context)
        try:
            for role, dev in self.devices.items():
                kind, _, slm_role = ROLES[role]
                device = _instantiate(self.source, driver_class(kind, dev.driver), role, slm_role, context, dev.args)
                bench.devices[role] = device
            # Open in a fixed order: modulators first, so a camera can find the light path.
            for device in bench.devices.values():
                device.open()
        except BaseException:
            bench.close()
            raise
        return bench


#: constructor parameters the factory fills in itself; a bench file may not set them
_FACTORY_PARAMETERS = {"name", "role", "context"}


def _check_arguments(source: str, role: str, cls: type, args: dict[str, Any]) -> None:
    sig = inspect.signature(cls)
    accepted = [p for p in sig.parameters if p not in _FACTORY_PARAMETERS]
    unknown = sorted(set(args) - set(accepted))
    if unknown:
        raise BenchFileError(
            source, f"[{role}] driver {cls.__name__} has no argument(s) {unknown}; it accepts {accepted}"
        )
    missing = [
        p.name
        for p in sig.parameters.values()
        if p.name not in _FACTORY_PARAMETERS and p.default is inspect.Parameter.empty and p.name not in args
        and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    ]
    if missing:
        raise BenchFileError(source, f"[{role}] driver {cls.__name__} needs argument(s) {missing}")


def _check_finite(source: str, role: str, args: dict[str, Any]) -> None:
    """Every number of a device table is finite (TOML reads ``inf`` and ``nan``)."""
    bad = [entry for key, value in args.items() for entry in non_finite_entries(key, value)]
    if bad:
        raise BenchFileError(source, f"[{role}] {', '.join(bad)}: every number must be finite")


def _calibration_paths(source: str, table: Any, base_dir: Path | None) -> dict[str, str]:
    """The [calibration] table's record paths; a relative one is resolved against the bench file's
    folder (the working directory for a bench given as text) and may not leave it, by ``..`` or by
    a link. An absolute path is the operator's explicit choice (``calibrate`` writes records kept
    from another folder that way) and is taken as written."""
    if not isinstance(table, dict):
        raise BenchFileError(source, "[calibration] must be a table of kind = \"record path\"")
    folder = (base_dir if base_dir is not None else Path.cwd()).resolve()
    paths: dict[str, str] = {}
    for kind, value in table.items():
        if not isinstance(value, str) or not value or "\0" in value:
            raise BenchFileError(source, f"[calibration] {kind} = {value!r} is not a path")
        if Path(value).is_absolute():
            paths[kind] = value
            continue
        resolved = (folder / value).resolve()
        if not resolved.is_relative_to(folder):
            raise BenchFileError(
                source, f"[calibration] {kind} = {value!r} leads outside the bench file's folder {folder} (to {resolved})"
            )
        paths[kind] = str(resolved) if base_dir is not None else value
    return paths


def _instantiate(source: str, cls: type, role: str, slm_role: SLMRole | None, context: BenchContext, args: dict[str, Any]) -> Device:
    params = inspect.signature(cls).parameters
    extra: dict[str, Any] = {"name": role}
    if "role" in params and slm_role is not None:
        extra["role"] = slm_role
    if "context" in params:
        extra["context"] = context
    try:
        return cls(**extra, **args)
    except (TypeError, ValueError) as exc:
        raise BenchFileError(source, f"[{role}] bad arguments for driver {cls.__name__}: {exc}") from None


@dataclass
class Bench:
    """The open devices of a bench, by role."""

    spec: BenchSpec
    context: BenchContext
    devices: dict[str, Device] = field(default_factory=dict)

    @property
    def input_slm(self) -> SLM:
        return self.devices["input_slm"]  # type: ignore[return-value]

    @property
    def fourier_slm(self) -> SLM:
        return self.devices["fourier_slm"]  # type: ignore[return-value]

    @property
    def camera(self) -> Camera:
        return self.devices["camera"]  # type: ignore[return-value]

    @property
    def shutter(self) -> Shutter | None:
        return self.devices.get("shutter")  # type: ignore[return-value]

    @property
    def power_meter(self) -> PowerMeter | None:
        return self.devices.get("power_meter")  # type: ignore[return-value]

    def close(self) -> None:
        """Close every device, cameras first; keeps going past errors."""
        errors = []
        for device in reversed(list(self.devices.values())):
            try:
                device.close()
            except Exception as exc:  # noqa: BLE001 - report all, close all
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
