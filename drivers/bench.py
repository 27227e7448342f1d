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


@dataclass(frozen=True)
class OpticsSpec:
    """Geometry of the 4f system: wavelength and the two lenses' focal lengths."""

    wavelength_m: float = 532e-9
    f1_m: float = 0.05
    f2_m: float = 0.05

    def __post_init__(self) -> None:
        for key in ("wavelength_m", "f1_m", "f2_m"):
            value = getattr(self, key)
            if not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f"[optics] {key} must be a positive number of metres; got {value!r}")


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
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise BenchFileError(str(path), f"cannot read: {exc.strerror or exc}") from None
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
            devices[role] = DeviceSpec(role, driver, args)
        calibration = raw.get("calibration", {})
        if base_dir is not None:
            calibration = {
                k: str((base_dir / v).resolve()) if isinstance(v, str) and not Path(v).is_absolute() else v
                for k, v in calibration.items()
            }
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
