"""Optional device features, each a small typed contract in the style of bluesky's ``protocols.py``.

A driver that offers a feature says so by inheriting the capability; code that wants the feature
asks ``isinstance(device, Capability)`` — never ``getattr`` with a default — and every driver that
claims one passes that capability's contract suite (``tests/contract/test_capability_contracts.py``).
The checks are nominal (explicit inheritance), so asking costs no device I/O and works on a closed
device.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class HardwareSequence(ABC):
    """An SLM that holds a sequence of patterns and steps through them on hardware triggers, one
    camera frame per pattern (DMDs, fast input modulators)."""

    @property
    @abstractmethod
    def max_sequence_length(self) -> int:
        """Longest sequence the device holds (``write_gray`` takes ``(n, rows, cols)`` up to it)."""


class PatternReadback(ABC):
    """An SLM that can say which gray levels are on its panel now."""

    @property
    @abstractmethod
    def shown_gray(self) -> np.ndarray:
        """The pattern on the panel (the last one of a sequence), as gray levels ``(rows, cols)``."""


class FrameBuffer(ABC):
    """A camera whose buffer of unread frames has a settable size (the lost-frame rule's bound)."""

    @property
    @abstractmethod
    def buffer_size(self) -> int:
        """Unread frames kept; one more arriving drops the oldest and counts it in ``frames_lost``."""

    @buffer_size.setter
    @abstractmethod
    def buffer_size(self, size: int) -> None: ...


class ReadoutTime(ABC):
    """A camera that says how long reading a frame out takes after its exposure (rolling readout,
    transfer): the shortest frame period is exposure + readout, and timeouts allow for it."""

    @property
    @abstractmethod
    def readout_s(self) -> float:
        """Seconds from the end of an exposure until the frame can be read."""


class FirmwareIdentity(ABC):
    """A device that reports its firmware version (recorded beside vendor, model and serial)."""

    @property
    @abstractmethod
    def firmware(self) -> str:
        """Firmware version as the device reports it."""


def readout_s(camera: object) -> float:
    """The camera's readout time, 0 for a camera that does not report one."""
    return camera.readout_s if isinstance(camera, ReadoutTime) else 0.0


def firmware(device: object) -> str:
    """The device's firmware version, "" for a device that does not report one."""
    return device.firmware if isinstance(device, FirmwareIdentity) else ""
