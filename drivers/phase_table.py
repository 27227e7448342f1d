"""Map from target phase (radians) to SLM gray level: the product of SLM phase calibration.

A table samples the inverse response on a uniform phase grid over [0, 2π). A *regional* table holds
one such curve per region of an N×M split of the panel, because the response varies across it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from drivers.errors import InvalidSetting, PhaseTableError

TWO_PI = 2.0 * np.pi


@dataclass(frozen=True)
class PhaseTable:
    """``gray[..., k]`` is the gray level that gives phase ``2π·k/K``.

    ``gray`` has shape ``(K,)`` for a global table or ``(R, C, K)`` for R×C regions of the panel.
    ``record_id`` names the calibration record it came from ("linear" when uncalibrated).
    """

    gray: np.ndarray
    bit_depth: int
    record_id: str = "linear"
    metadata: dict = field(default_factory=dict)
    #: how the panel shows a pattern, measured by the same calibration (calibration.slm_fringing): the
    #: width (SLM px) of the Gaussian by which the fringing field smooths the phase between pixels, and
    #: the modulated fraction of a pixel's area (the gaps reflect unmodulated light). 0 and 1: an ideal
    #: panel (the linear table, and records made before the measurement)
    fringing_sigma_px: float = 0.0
    fill_factor: float = 1.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.fringing_sigma_px) and self.fringing_sigma_px >= 0):
            raise PhaseTableError(f"phase table {self.record_id!r}: fringing width must be >= 0 px; got {self.fringing_sigma_px}")
        if not (np.isfinite(self.fill_factor) and 0 < self.fill_factor <= 1):
            raise PhaseTableError(f"phase table {self.record_id!r}: fill factor must be within (0, 1]; got {self.fill_factor}")
        g = np.asarray(self.gray)
        if g.ndim not in (1, 3) or g.shape[-1] < 2:
            raise PhaseTableError(f"phase table must have shape (K,) or (R, C, K); got {g.shape}")
        if g.min() < 0 or g.max() > 2**self.bit_depth - 1:
            raise PhaseTableError(f"phase table gray levels outside 0..{2**self.bit_depth - 1}")

    @classmethod
    def linear(cls, bit_depth: int, samples: int = 1024) -> PhaseTable:
        """The uncalibrated assumption: gray level ∝ phase, 2π at full scale (2^bits)."""
        phase = np.arange(samples) * TWO_PI / samples
        gray = np.rint(phase / TWO_PI * 2**bit_depth) % 2**bit_depth
        return cls(gray=gray.astype(np.uint16), bit_depth=bit_depth)

    @property
    def regions(self) -> tuple[int, int]:
        return (1, 1) if self.gray.ndim == 1 else self.gray.shape[:2]

    def check_compatible(self, device: str, *, bit_depth: int, grid_shape: tuple[int, int]) -> None:
        if bit_depth != self.bit_depth:
            raise InvalidSetting(
                device, f"phase table {self.record_id!r} is for {self.bit_depth}-bit gray levels; device is {bit_depth}-bit"
            )
        r, c = self.regions
        if r > grid_shape[0] or c > grid_shape[1]:
            raise InvalidSetting(device, f"phase table has {r}x{c} regions, more than the {grid_shape} pixels")

    def gray_for_phase(self, phase_rad: np.ndarray) -> np.ndarray:
        """Gray levels for a phase pattern of shape ``(rows, cols)`` or ``(n, rows, cols)``."""
        phase = np.mod(phase_rad, TWO_PI)
        k = self.gray.shape[-1]
        idx = np.rint(phase / TWO_PI * k).astype(np.int64) % k
        if self.gray.ndim == 1:
            return self.gray[idx].astype(np.uint16)
        rows, cols = phase.shape[-2:]
        r_reg, c_reg = self.regions
        ri = (np.arange(rows) * r_reg // rows)[:, None]
        ci = (np.arange(cols) * c_reg // cols)[None, :]
        return self.gray[ri, ci, idx].astype(np.uint16)
