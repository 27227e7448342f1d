"""The SLM contract: a pixel grid that shows gray levels, phases (Fourier role) or amplitudes (input role).

Validation lives here, in the base class, so every driver rejects a bad pattern the same way and
*before* anything reaches the hardware. Drivers implement only :meth:`SLM._show_gray`.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from drivers.amplitude_table import AmplitudeTable
from drivers.capabilities import HardwareSequence
from drivers.device import Device
from drivers.errors import InvalidPattern, UnsupportedFeature
from drivers.limits import (
    GRID_BYTES_PER_PIXEL, GRID_MEMORY_BUDGET_BYTES, MAX_GRID_SIDE, PITCH_RANGE_M, finite, integer, within_budget,
)
from drivers.phase_table import PhaseTable


class SLMRole(StrEnum):
    """Where the modulator sits in the 4f system."""

    FOURIER = "fourier"  # phase modulator in the Fourier plane: shows the mask
    INPUT = "input"  # amplitude modulator / DMD in the input plane: shows the image


@dataclass(frozen=True)
class PixelGrid:
    """Rows, columns and pixel pitch (metres) of an SLM or camera sensor."""

    rows: int
    cols: int
    pitch_m: float

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.cols)

    def __post_init__(self) -> None:
        """Refuse a grid out of the documented ranges (:mod:`drivers.limits`), before any device
        allocates a pattern or frame of its size."""
        integer("rows", self.rows, 1, MAX_GRID_SIDE)
        integer("cols", self.cols, 1, MAX_GRID_SIDE)
        finite("pitch_m", self.pitch_m, *PITCH_RANGE_M, " m")
        within_budget(
            f"a {self.rows}x{self.cols} pixel grid (rows x cols, {GRID_BYTES_PER_PIXEL} bytes per pixel)",
            self.rows * self.cols * GRID_BYTES_PER_PIXEL, GRID_MEMORY_BUDGET_BYTES,
            "drivers.limits.GRID_MEMORY_BUDGET_BYTES",
        )


class SLM(Device):
    """A spatial light modulator.

    ``write_gray`` takes integer gray levels ``(rows, cols)``; an ``(n, rows, cols)`` stack is a
    sequence shown one pattern per camera hardware trigger (only on a :class:`HardwareSequence` SLM).
    ``write_phase`` (Fourier role) maps radians through the active :class:`PhaseTable`;
    ``write_amplitude`` (input role) maps field amplitude in [0, 1] through the active
    :class:`AmplitudeTable` (linear until the input response is calibrated).
    """

    def __init__(self, name: str, role: SLMRole | str) -> None:
        super().__init__(name)
        self.role = SLMRole(role)
        self.frame_count = 0  # patterns shown since open
        self._phase_table: PhaseTable | None = None
        self._amplitude_table: AmplitudeTable | None = None

    # -- description -------------------------------------------------------------------------
    @property
    @abstractmethod
    def grid(self) -> PixelGrid:
        """Pixel rows, columns and pitch."""

    def _remember_description(self) -> None:
        self._described("grid", lambda: self.grid)
        self._described("bit depth", lambda: self.bit_depth)

    @property
    @abstractmethod
    def bit_depth(self) -> int:
        """Bits per gray level (8: levels 0..255)."""

    @property
    @abstractmethod
    def wavelength_m(self) -> float:
        """Wavelength the device (and its phase table) is set up for."""

    @property
    @abstractmethod
    def settle_time_s(self) -> float:
        """Time after a write until the pattern is stable (LC response, DMD load)."""

    @property
    def levels(self) -> int:
        return 2**self.bit_depth

    @property
    def sequence_limit(self) -> int:
        """Longest pattern sequence one write may carry: 1 (one pattern at a time, as LC SLMs) unless
        the device is a :class:`HardwareSequence`."""
        return self.max_sequence_length if isinstance(self, HardwareSequence) else 1

    # -- phase table -------------------------------------------------------------------------
    @property
    def phase_table(self) -> PhaseTable:
        """Active map from target phase to gray level; linear (2π at full scale) until calibrated."""
        if self._phase_table is None:
            self._phase_table = PhaseTable.linear(self.bit_depth)
        return self._phase_table

    @phase_table.setter
    def phase_table(self, table: PhaseTable) -> None:
        table.check_compatible(self.name, bit_depth=self.bit_depth, grid_shape=self.grid.shape)
        self._phase_table = table

    # -- amplitude table -----------------------------------------------------------------------
    @property
    def amplitude_table(self) -> AmplitudeTable:
        """Active map from field amplitude to gray level; linear (1 at the top level) until calibrated."""
        if self._amplitude_table is None:
            self._amplitude_table = AmplitudeTable.linear(self.bit_depth)
        return self._amplitude_table

    @amplitude_table.setter
    def amplitude_table(self, table: AmplitudeTable) -> None:
        table.check_compatible(self.name, bit_depth=self.bit_depth)
        self._amplitude_table = table

    # -- writing -----------------------------------------------------------------------------
    def write_gray(self, levels: np.ndarray) -> None:
        """Show raw gray levels (integer array, ``(rows, cols)`` or ``(n, rows, cols)``)."""
        self._require_open()
        checked = self._check_gray(levels)
        self._show_gray(checked)
        self.frame_count += checked.shape[0] if checked.ndim == 3 else 1

    def write_phase(self, phase_rad: np.ndarray) -> None:
        """Show a phase pattern in radians (any real value; wrapped into [0, 2π))."""
        self._require_open()
        if self.role is not SLMRole.FOURIER:
            raise UnsupportedFeature(self.name, f"write_phase needs a phase modulator; this is an {self.role} modulator")
        phase = self._check_float(phase_rad, "phase")
        self.write_gray(self.phase_table.gray_for_phase(phase))

    def write_amplitude(self, amplitude: np.ndarray) -> None:
        """Show a field amplitude in [0, 1] (input role) through the active :class:`AmplitudeTable`."""
        self._require_open()
        if self.role is not SLMRole.INPUT:
            raise UnsupportedFeature(self.name, f"write_amplitude needs an input modulator; this is a {self.role} modulator")
        amp, lo, hi = self._checked_float(amplitude, "amplitude")
        if lo < 0 or hi > 1:
            raise InvalidPattern(self.name, f"amplitude outside [0, 1]: min {lo:.4g}, max {hi:.4g}")
        self.write_gray(self.amplitude_table.gray_for_amplitude(amp))

    @abstractmethod
    def _show_gray(self, levels: np.ndarray) -> None:
        """Send validated gray levels (uint16, 2-D or 3-D) to the device."""

    # -- validation ----------------------------------------------------------------------------
    def _check_shape(self, pattern: np.ndarray, what: str) -> None:
        if pattern.ndim == 2:
            shape = pattern.shape
        elif pattern.ndim == 3:
            shape = pattern.shape[1:]
            if not 1 <= pattern.shape[0] <= self.sequence_limit:
                raise InvalidPattern(
                    self.name,
                    f"sequence of {pattern.shape[0]} {what} patterns; this device holds 1..{self.sequence_limit}",
                )
        else:
            raise InvalidPattern(self.name, f"{what} pattern must be 2-D (rows, cols) or 3-D; got shape {pattern.shape}")
        if tuple(shape) != self.grid.shape:
            raise InvalidPattern(
                self.name, f"{what} pattern shape {tuple(shape)} does not match the SLM's {self.grid.shape}"
            )

    def _check_gray(self, levels: np.ndarray) -> np.ndarray:
        levels = np.asarray(levels)
        if not np.issubdtype(levels.dtype, np.integer):
            raise InvalidPattern(
                self.name, f"gray levels must be an integer array; got dtype {levels.dtype} (use write_phase for radians)"
            )
        self._check_shape(levels, "gray-level")
        lo, hi = int(levels.min()), int(levels.max())
        if lo < 0 or hi > self.levels - 1:
            raise InvalidPattern(
                self.name, f"gray levels outside 0..{self.levels - 1} ({self.bit_depth}-bit): min {lo}, max {hi}"
            )
        return levels.astype(np.uint16, copy=True)

    def _check_float(self, pattern: np.ndarray, what: str) -> np.ndarray:
        return self._checked_float(pattern, what)[0]

    def _checked_float(self, pattern: np.ndarray, what: str) -> tuple[np.ndarray, float, float]:
        """The pattern as float64 (not copied when it is already) and its finite min and max."""
        pattern = np.asarray(pattern)
        if not (np.issubdtype(pattern.dtype, np.floating) or np.issubdtype(pattern.dtype, np.integer)):
            raise InvalidPattern(self.name, f"{what} pattern must be real numbers; got dtype {pattern.dtype}")
        self._check_shape(pattern, what)
        pattern = pattern.astype(np.float64, copy=False)
        lo, hi = float(pattern.min()), float(pattern.max())  # NaN propagates to both, ±inf shows in one
        if not (np.isfinite(lo) and np.isfinite(hi)):
            bad = int((~np.isfinite(pattern)).sum())
            raise InvalidPattern(self.name, f"{what} pattern has {bad} NaN/inf values")
        return pattern, lo, hi
