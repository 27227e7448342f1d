"""Map from field amplitude in [0, 1] to input-modulator gray level: the product of the input-response
calibration (:mod:`calibration.input_response`).

An input modulator's field is rarely linear in its gray level: an LC amplitude modulator follows
cos² of a retardance in intensity, an analog one has a finite contrast; a DMD's mirrors switch
between two fields, so its field averaged over the exposure is linear in gray up to the off mirrors'
leak. A table samples the inverse of the measured response at ``K`` amplitude targets
``linspace(0, 1, K)``; an amplitude between two targets gets the gray level interpolated linearly
between theirs, then rounded — where the inverse is steep (an LC cell near its extremes: several
gray levels per target of a 256-sample table) nearest-target lookup would throw levels away.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from drivers.errors import AmplitudeTableError, InvalidSetting

#: values per step when converting a float pattern to gray levels (reused buffers of 512 KiB each:
#: no page faults per pattern)
CONVERT_STEP = 2**16


@dataclass(frozen=True)
class AmplitudeTable:
    """``gray[k]`` is the gray level that gives field amplitude ``k/(K−1)`` of full on.

    ``gray`` has shape ``(K,)``, K ≥ 2: whole gray levels within ``0..2^bit_depth − 1`` that never fall
    with the amplitude (more amplitude needs at least as much gray) and do not stay constant.
    ``record_id`` names the calibration record it came from ("linear" when uncalibrated).
    """

    gray: np.ndarray
    bit_depth: int
    record_id: str = "linear"
    metadata: dict = field(default_factory=dict)
    #: the field a dark (gray 0) pixel still sends, over a full-on one's, as the same calibration measured
    #: it: no table delivers less, and every pixel outside an image sends it. 0: none measured (the linear
    #: table, and records made before the measurement)
    leak_amplitude: float = 0.0
    #: how the table shows an amplitude ``a`` over that leak: ``leak + (1 − leak)·a`` (True: binary
    #: mirrors, whose off state sends the leak under every level) or ``max(a, leak)`` (False)
    leak_adds: bool = False
    _levels_f: np.ndarray = field(init=False, repr=False, compare=False)
    _steps_f: np.ndarray = field(init=False, repr=False, compare=False)
    _identity: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        name = f"amplitude table {self.record_id!r}"
        if isinstance(self.bit_depth, bool) or not isinstance(self.bit_depth, (int, np.integer)) or not 1 <= self.bit_depth <= 16:
            raise AmplitudeTableError(f"{name}: bit depth must be an integer in 1..16; got {self.bit_depth!r}")
        if not (np.isfinite(self.leak_amplitude) and 0 <= self.leak_amplitude < 1):
            raise AmplitudeTableError(f"{name}: the dark pixels' leak must be within [0, 1) of full on; got {self.leak_amplitude}")
        g = np.asarray(self.gray)
        if g.ndim != 1 or g.shape[0] < 2:
            raise AmplitudeTableError(f"{name} must have shape (K,) with K >= 2 amplitude targets; got {g.shape}")
        if not (np.issubdtype(g.dtype, np.integer) or np.issubdtype(g.dtype, np.floating)):
            raise AmplitudeTableError(f"{name} must hold real gray levels; got dtype {g.dtype}")
        values = g.astype(np.float64)
        bad = int((~np.isfinite(values)).sum())
        if bad:
            raise AmplitudeTableError(f"{name} has {bad} NaN/inf gray levels")
        if not np.array_equal(values, np.rint(values)):
            raise AmplitudeTableError(f"{name} has gray levels that are not whole numbers")
        top = 2**int(self.bit_depth) - 1
        if values.min() < 0 or values.max() > top:
            raise AmplitudeTableError(
                f"{name} has gray levels outside 0..{top} ({self.bit_depth}-bit): min {values.min():.0f}, max {values.max():.0f}"
            )
        steps = np.diff(values)
        falls = np.flatnonzero(steps < 0)
        if falls.size:
            k = int(falls[0])
            raise AmplitudeTableError(
                f"{name} is not monotone: gray falls from {values[k]:.0f} to {values[k + 1]:.0f} between amplitude "
                f"targets {k} and {k + 1} of {values.size} (more amplitude must need at least as much gray)"
            )
        if values[-1] == values[0]:
            raise AmplitudeTableError(f"{name} shows gray {values[0]:.0f} for every amplitude")
        object.__setattr__(self, "gray", values.astype(np.uint16))
        object.__setattr__(self, "_levels_f", values)
        object.__setattr__(self, "_steps_f", steps)
        object.__setattr__(self, "_identity", values.size == top + 1 and bool(np.all(steps == 1)) and values[0] == 0)

    @classmethod
    def linear(cls, bit_depth: int) -> AmplitudeTable:
        """The uncalibrated assumption: gray level ∝ amplitude, 1 at the top level."""
        return cls(gray=np.arange(2**bit_depth, dtype=np.uint16), bit_depth=bit_depth)

    def check_compatible(self, device: str, *, bit_depth: int) -> None:
        if bit_depth != self.bit_depth:
            raise InvalidSetting(
                device, f"amplitude table {self.record_id!r} is for {self.bit_depth}-bit gray levels; device is {bit_depth}-bit"
            )

    def gray_for_amplitude(self, amplitude: np.ndarray) -> np.ndarray:
        """Gray levels (uint16, same shape) for amplitudes already checked to lie in [0, 1]."""
        amp = np.asarray(amplitude, dtype=np.float64)
        gray = np.empty(amp.shape, dtype=np.uint16)
        flat_amp, flat_gray = amp.reshape(-1), gray.reshape(-1)
        last = self.gray.size - 1
        size = min(flat_amp.size, CONVERT_STEP)
        position, level, step = np.empty(size), np.empty(size), np.empty(size)
        index = np.empty(size, dtype=np.intp)
        for start in range(0, flat_amp.size, CONVERT_STEP):
            stop = min(start + CONVERT_STEP, flat_amp.size)
            n = stop - start
            pos, lvl = position[:n], level[:n]
            np.multiply(flat_amp[start:stop], last, out=pos)
            if self._identity:  # gray = amplitude·(L−1): no lookup
                flat_gray[start:stop] = np.rint(pos, out=pos)
                continue
            np.floor(pos, out=lvl)
            np.minimum(lvl, last - 1, out=lvl)  # amplitude 1 interpolates within the last interval
            index[:n] = lvl
            np.subtract(pos, lvl, out=pos)  # fraction of the way to the next target
            np.take(self._levels_f, index[:n], out=lvl)
            np.take(self._steps_f, index[:n], out=step[:n])
            np.multiply(step[:n], pos, out=pos)
            np.add(lvl, pos, out=lvl)
            flat_gray[start:stop] = np.rint(lvl, out=lvl)
        return gray
