"""Drivers by name. A bench file says ``driver = "mock"``; this table says which class that is.

The table is static code: a bench file can only pick among these names, never import a path of its
own. Classes are imported on first use so that, e.g., slmsuite (which loads OpenCV and matplotlib)
is only imported by benches that use it.
"""

from __future__ import annotations

import importlib
from enum import StrEnum

from drivers.errors import LabctlError


class DeviceKind(StrEnum):
    SLM = "slm"
    CAMERA = "camera"
    SHUTTER = "shutter"
    POWER_METER = "power_meter"


_DRIVERS: dict[DeviceKind, dict[str, str]] = {
    DeviceKind.SLM: {
        "mock": "mock_hw.slm:MockSLM",
        "slmsuite": "drivers.slmsuite_slm:SlmsuiteSLM",
    },
    DeviceKind.CAMERA: {
        "mock": "mock_hw.camera:MockCamera",
        "slmsuite": "drivers.slmsuite_camera:SlmsuiteCamera",
        "harvesters": "drivers.harvesters_camera:HarvestersCamera",
        "opencv": "drivers.opencv_camera:OpenCVCamera",
    },
    DeviceKind.SHUTTER: {
        "mock": "mock_hw.instruments:MockShutter",
        "serial_shutter": "drivers.serial_shutter:SerialShutter",
        "obis_laser": "drivers.obis_laser:ObisLaser",
    },
    DeviceKind.POWER_METER: {
        "mock": "mock_hw.instruments:MockPowerMeter",
        "visa_power_meter": "drivers.visa_power_meter:VisaPowerMeter",
    },
}


class UnknownDriver(LabctlError, LookupError):
    def __init__(self, kind: DeviceKind, name: str) -> None:
        known = ", ".join(sorted(_DRIVERS[kind])) or "none"
        super().__init__(f"no {kind} driver named {name!r}; known {kind} drivers: {known}")


def driver_names(kind: DeviceKind) -> list[str]:
    return sorted(_DRIVERS[kind])


def driver_class(kind: DeviceKind, name: str) -> type:
    """The class registered as ``name`` for ``kind``; raises UnknownDriver."""
    try:
        target = _DRIVERS[kind][name]
    except KeyError:
        raise UnknownDriver(kind, name) from None
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)
