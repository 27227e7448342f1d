"""Minimal contracts for the bench's instruments: a beam shutter and an optical power meter."""

from __future__ import annotations

from abc import abstractmethod

from drivers.device import Device


class Shutter(Device):
    """Blocks or passes the laser beam (dark frames are taken with the beam blocked)."""

    @abstractmethod
    def open_beam(self) -> None:
        """Let the beam through; returns once the shutter reports open."""

    @abstractmethod
    def block_beam(self) -> None:
        """Block the beam; returns once the shutter reports closed."""

    @property
    @abstractmethod
    def beam_open(self) -> bool:
        """True when the shutter passes the beam (as read back from the device)."""


class PowerMeter(Device):
    """An optical power meter with wavelength correction."""

    @property
    @abstractmethod
    def wavelength_m(self) -> float:
        """Wavelength the sensor's responsivity is corrected for."""

    @wavelength_m.setter
    @abstractmethod
    def wavelength_m(self, value: float) -> None: ...

    @abstractmethod
    def read_power_w(self, timeout_s: float = 2.0) -> float:
        """One power reading in watts."""
