"""What every device has in common: a name, an identity, and an explicit open/close life cycle.

Constructors only store settings; nothing talks to hardware before :meth:`Device.open` (or ``with``).

What a closed device answers: its identity (``info``), its pixel grid and bit depth — from its
arguments, or as last read while it was open — so that a bench can be described, and a record
written, after its devices are released. Frames, patterns and settings need an open device.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self, TypeVar

from drivers.errors import DeviceBusy, DeviceDisconnected

T = TypeVar("T")


@dataclass(frozen=True)
class DeviceInfo:
    """Identity of a physical (or simulated) device, written into every record and calibration."""

    driver: str
    vendor: str
    model: str
    serial: str

    def as_dict(self) -> dict[str, str]:
        return {"driver": self.driver, "vendor": self.vendor, "model": self.model, "serial": self.serial}


class Device(ABC):
    """Base of all devices: ``open()`` connects, ``close()`` releases (idempotent).

    Opening a device that is already open raises :class:`DeviceBusy`, as a vendor SDK refuses a
    second handle: code that would open one device twice fails in tests with the simulator too."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._is_open = False
        self._opening = False  # inside _connect: the hardware answers, the device is not yet open
        self._last_read: dict[str, Any] = {}

    def _described(self, what: str, read: Callable[[], T]) -> T:
        """``read()`` while the device is open (and remember it); the remembered value once closed.

        For descriptions that only the hardware knows (a vendor SLM's grid, a camera's bit depth):
        the closed-device contract of this module."""
        if self._is_open or self._opening:
            self._last_read[what] = value = read()
            return value
        if what not in self._last_read:
            raise DeviceDisconnected(self.name, f"its {what} is read from the device: open it once first")
        return self._last_read[what]

    @property
    @abstractmethod
    def info(self) -> DeviceInfo:
        """Driver, vendor, model and serial number of the device."""

    @property
    def is_open(self) -> bool:
        return self._is_open

    def open(self) -> Self:
        if self._is_open:
            raise DeviceBusy(self.name, "already open: close it before opening it again")
        self._opening = True
        try:
            self._connect()
        finally:
            self._opening = False
        self._is_open = True
        self._remember_description()
        return self

    def _remember_description(self) -> None:
        """Read, just after opening, what the closed device must still answer (SLMs and cameras:
        grid and bit depth). Identity comes from the arguments or is kept by the driver itself."""

    def close(self) -> None:
        if self._is_open:
            try:
                self._disconnect()
            finally:
                self._is_open = False

    def _require_open(self) -> None:
        if not self._is_open:
            raise DeviceDisconnected(self.name, "device is not open (call open() or use it in a `with` block)")

    @abstractmethod
    def _connect(self) -> None:
        """Open the link to the hardware."""

    @abstractmethod
    def _disconnect(self) -> None:
        """Release the hardware; must not raise if the link is already gone."""

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {'open' if self._is_open else 'closed'}>"
