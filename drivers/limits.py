"""Documented ranges of the numbers a bench file gives, and the checks that hold them.

A bench file is operator input: a number that is not finite, out of its physical range or so large
that the bench would not fit in memory is refused here, naming the key and the value, before
anything is built from it. The ranges (also in the README, "Records and safety"):

* ``[optics]``: ``wavelength_m`` in :data:`WAVELENGTH_RANGE_M`, ``f1_m`` and ``f2_m`` in
  :data:`FOCAL_LENGTH_RANGE_M`;
* any device's pixel grid (:class:`drivers.slm.PixelGrid`): integer rows and columns, pitch in
  :data:`PITCH_RANGE_M`, and ``rows × cols ×`` :data:`GRID_BYTES_PER_PIXEL` within
  :data:`GRID_MEMORY_BUDGET_BYTES` (4 GiB: 67 million pixels, 8192 × 8192);
* every number in a device table is finite (TOML allows ``inf`` and ``nan``); each driver checks the
  ranges of its own arguments (the simulated devices: :mod:`mock_hw.budget`).
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

from drivers.errors import LabctlError

WAVELENGTH_RANGE_M = (1e-7, 2e-5)  # 100 nm (deep UV) .. 20 µm (far IR)
FOCAL_LENGTH_RANGE_M = (1e-3, 10.0)
PITCH_RANGE_M = (1e-7, 1e-2)
#: what labctl may keep per pixel of one device: the frame or pattern, float64 working copies and
#: complex optical planes (an estimate on the safe side)
GRID_BYTES_PER_PIXEL = 64
#: the most memory one device's pixel grid may need at :data:`GRID_BYTES_PER_PIXEL`
GRID_MEMORY_BUDGET_BYTES = 4 * 2**30
#: rows or columns of a one-pixel-wide grid at the budget: beyond it no grid fits
MAX_GRID_SIDE = GRID_MEMORY_BUDGET_BYTES // GRID_BYTES_PER_PIXEL


class OutOfRange(LabctlError, ValueError):
    """A number is not finite, not of the right type, or outside its documented range.

    The bench-file factory reports it as a :class:`drivers.errors.BenchFileError` naming the table."""


def finite(key: str, value: Any, lo: float, hi: float, unit: str = "") -> float:
    """``value`` as a float when it is a real number in ``[lo, hi]``; else :class:`OutOfRange`."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or not lo <= value <= hi:
        raise OutOfRange(f"{key} = {value!r} is not a finite number in [{lo:g}, {hi:g}]{unit}")
    return float(value)


def integer(key: str, value: Any, lo: int, hi: int) -> int:
    """``value`` when it is an integer (not a bool) in ``[lo, hi]``; else :class:`OutOfRange`."""
    if isinstance(value, bool) or not isinstance(value, Integral) or not lo <= value <= hi:
        raise OutOfRange(f"{key} = {value!r} is not an integer in {lo}..{hi}")
    return int(value)


def integers(key: str, values: Any, lo: int, hi: int) -> list[int]:
    """A list of integers in ``[lo, hi]`` (``None``: empty)."""
    if values is None:
        return []
    if not isinstance(values, (list, tuple)):
        raise OutOfRange(f"{key} = {values!r} is not a list of integers")
    return [integer(f"{key}[{i}]", v, lo, hi) for i, v in enumerate(values)]


def human_bytes(n: float) -> str:
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
    i = 0
    while n >= 1024 and i < len(units) - 1:
        n /= 1024
        i += 1
    return f"{n:.3g} {units[i]}"


def within_budget(what: str, needed: float, budget: int, budget_name: str) -> None:
    """:class:`OutOfRange` when ``needed`` bytes exceed ``budget`` (named ``budget_name`` in the message)."""
    if needed > budget:
        raise OutOfRange(
            f"{what} would need about {human_bytes(needed)}, over the {human_bytes(budget)} budget "
            f"({budget_name}); refused before allocating it"
        )


def non_finite_entries(key: str, value: Any) -> list[str]:
    """Keys (``key``, ``key[2]``, ``key.sub``) under which ``value`` holds NaN or an infinity."""
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{key} = {value!r}"]
    if isinstance(value, (list, tuple)):
        return [bad for i, v in enumerate(value) for bad in non_finite_entries(f"{key}[{i}]", v)]
    if isinstance(value, dict):
        return [bad for k, v in value.items() for bad in non_finite_entries(f"{key}.{k}", v)]
    return []
