"""What every device has in common: a name, an identity, and an explicit open/close life cycle.

Constructors only store settings; nothing talks to hardware before :meth:`Device.open` (or ``with``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from drivers.errors import DeviceDisconnected


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
    """Base of all devices: ``open()`` connects, ``close()`` releases, both idempotent."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._is_open = False

    @property
    @abstractmethod
    def info(self) -> DeviceInfo:
        """Driver, vendor, model and serial number of the device."""

    @property
    def is_open(self) -> bool:
        return self._is_open

    def open(self) -> Self:
        if not self._is_open:
            self._connect()
            self._is_open = True
        return self

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
