"""The camera contract, after pylablib's: exposure with limits, optional gain, software or hardware
trigger, a frame buffer with counters and a lost-frame rule, and finite timeouts on every read.

Lost-frame rule: the driver keeps at most ``buffer_size`` unread frames. When a new frame arrives
into a full buffer, the oldest unread frame is dropped and counted in ``frames_lost``; readers see
the gap in ``frame_number``.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from drivers.device import Device
from drivers.errors import DeviceTimeout, InvalidSetting, UnsupportedFeature
from drivers.slm import PixelGrid


class TriggerSource(StrEnum):
    SOFTWARE = "software"  # a frame per trigger() call
    HARDWARE = "hardware"  # a frame per pulse on the trigger line (e.g. from the input modulator)


@dataclass(frozen=True)
class Frame:
    """One camera frame: data in DN and the metadata a record needs."""

    data: np.ndarray
    frame_number: int
    timestamp_s: float
    exposure_s: float
    gain: float | None = None


@dataclass(frozen=True)
class FrameBatch:
    """Frames read together: ``data`` is ``(n, rows, cols)``; per-frame numbers and timestamps."""

    data: np.ndarray
    frame_numbers: np.ndarray
    timestamps_s: np.ndarray
    exposure_s: float
    gain: float | None = None

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def frame(self, i: int) -> Frame:
        return Frame(self.data[i], int(self.frame_numbers[i]), float(self.timestamps_s[i]), self.exposure_s, self.gain)

    @classmethod
    def stack(cls, frames: list[Frame]) -> FrameBatch:
        if not frames:
            raise ValueError("no frames to stack")
        return cls(
            data=np.stack([f.data for f in frames]),
            frame_numbers=np.array([f.frame_number for f in frames], dtype=np.int64),
            timestamps_s=np.array([f.timestamp_s for f in frames], dtype=np.float64),
            exposure_s=frames[-1].exposure_s,
            gain=frames[-1].gain,
        )


class Camera(Device):
    """A camera. Drivers implement the underscored hooks; validation is done here."""

    #: Used when a read is given no timeout. Never infinite.
    default_timeout_s: float = 5.0

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._trigger_source = TriggerSource.SOFTWARE

    # -- description -----------------------------------------------------------------------------
    @property
    @abstractmethod
    def grid(self) -> PixelGrid:
        """Sensor rows, columns (of the active region) and pixel pitch."""

    def _remember_description(self) -> None:
        self._described("grid", lambda: self.grid)
        self._described("bit depth", lambda: self.bit_depth)

    @property
    @abstractmethod
    def bit_depth(self) -> int:
        """Bits per pixel of the delivered frames."""

    @property
    def max_level(self) -> int:
        return 2**self.bit_depth - 1

    # -- exposure and gain -------------------------------------------------------------------------
    @property
    @abstractmethod
    def exposure_limits_s(self) -> tuple[float, float]:
        """Shortest and longest exposure the device accepts."""

    @property
    def exposure_s(self) -> float:
        self._require_open()
        return self._get_exposure()

    @exposure_s.setter
    def exposure_s(self, seconds: float) -> None:
        self._require_open()
        lo, hi = self.exposure_limits_s
        if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and lo <= seconds <= hi):
            raise InvalidSetting(self.name, f"exposure {seconds!r} s outside the limits [{lo:g}, {hi:g}] s")
        self._set_exposure(float(seconds))

    @property
    def gain_limits(self) -> tuple[float, float] | None:
        """Gain range, or None when the camera has no gain control."""
        return None

    @property
    def gain(self) -> float | None:
        self._require_open()
        return None if self.gain_limits is None else self._get_gain()

    @gain.setter
    def gain(self, value: float) -> None:
        self._require_open()
        limits = self.gain_limits
        if limits is None:
            raise UnsupportedFeature(self.name, "this camera has no gain control")
        if not (isinstance(value, (int, float)) and math.isfinite(value) and limits[0] <= value <= limits[1]):
            raise InvalidSetting(self.name, f"gain {value!r} outside the limits [{limits[0]:g}, {limits[1]:g}]")
        self._set_gain(float(value))

    # -- triggering and reading ----------------------------------------------------------------------
    @property
    def trigger_source(self) -> TriggerSource:
        return self._trigger_source

    @trigger_source.setter
    def trigger_source(self, source: TriggerSource | str) -> None:
        self._require_open()
        try:
            source = TriggerSource(source)
        except ValueError:
            raise InvalidSetting(self.name, f"unknown trigger source {source!r}; use 'software' or 'hardware'") from None
        self._set_trigger_source(source)
        self._trigger_source = source

    def trigger(self) -> None:
        """Software trigger: start one exposure."""
        self._require_open()
        if self._trigger_source is not TriggerSource.SOFTWARE:
            raise InvalidSetting(self.name, "software trigger while the camera waits for hardware triggers")
        self._software_trigger()

    def read_frame(self, timeout_s: float | None = None) -> Frame:
        """Oldest unread frame; raises DeviceTimeout if none arrives within ``timeout_s``."""
        self._require_open()
        return self._read_frame(self._check_timeout(timeout_s))

    def read_frames(self, n: int, timeout_s: float | None = None) -> FrameBatch:
        """The ``n`` oldest unread frames, waiting at most ``timeout_s`` for each."""
        self._require_open()
        if n < 1:
            raise InvalidSetting(self.name, f"asked for {n} frames")
        return self._read_frames(n, self._check_timeout(timeout_s))

    def discard_unread(self) -> int:
        """Drop every frame waiting in the buffer (e.g. a partial batch before a retry); returns how many."""
        self._require_open()
        return self._discard_unread()

    def capture(self, timeout_s: float | None = None) -> Frame:
        """Software-trigger one exposure and return its frame."""
        self.trigger()
        return self.read_frame(timeout_s)

    def _check_timeout(self, timeout_s: float | None) -> float:
        t = self.default_timeout_s if timeout_s is None else timeout_s
        if not (isinstance(t, (int, float)) and math.isfinite(t) and t > 0):
            raise InvalidSetting(self.name, f"timeout must be a finite positive number of seconds; got {timeout_s!r}")
        return float(t)

    # -- counters (lost-frame rule) ---------------------------------------------------------------------
    @property
    @abstractmethod
    def frames_acquired(self) -> int:
        """Frames exposed since open (read, unread or lost)."""

    @property
    @abstractmethod
    def frames_lost(self) -> int:
        """Frames dropped because the buffer was full."""

    # -- driver hooks ---------------------------------------------------------------------------------
    @abstractmethod
    def _get_exposure(self) -> float: ...

    @abstractmethod
    def _set_exposure(self, seconds: float) -> None: ...

    def _get_gain(self) -> float:
        raise UnsupportedFeature(self.name, "this camera has no gain control")

    def _set_gain(self, value: float) -> None:
        raise UnsupportedFeature(self.name, "this camera has no gain control")

    def _set_trigger_source(self, source: TriggerSource) -> None:
        if source is not TriggerSource.SOFTWARE:
            raise UnsupportedFeature(self.name, f"{source} trigger is not available on this camera")

    @abstractmethod
    def _software_trigger(self) -> None: ...

    @abstractmethod
    def _read_frame(self, timeout_s: float) -> Frame: ...

    def _read_frames(self, n: int, timeout_s: float) -> FrameBatch:
        return FrameBatch.stack([self._read_frame(timeout_s) for _ in range(n)])

    def _discard_unread(self) -> int:
        """Default: read with a short timeout until nothing is left."""
        dropped = 0
        while True:
            try:
                self._read_frame(0.01)
            except DeviceTimeout:
                return dropped
            dropped += 1
