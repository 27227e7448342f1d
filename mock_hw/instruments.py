"""Simulated instruments on the optical table: a beam shutter and a power meter behind the input
modulator."""

from __future__ import annotations

import numpy as np

from drivers.bench import BenchContext
from drivers.device import DeviceInfo
from drivers.errors import InvalidSetting
from drivers.instruments import PowerMeter, Shutter
from drivers.limits import finite, integer
from mock_hw import budget
from mock_hw.optical_table import SimulatedOpticalTable
from mock_hw.slm import optical_table


class MockShutter(Shutter):
    """Blocks the laser on the simulated table; takes ``switch_time_s`` (simulated) to move."""

    def __init__(self, name: str, context: BenchContext, switch_time_s: float = 5e-3, serial: str = "SIM-SHUTTER") -> None:
        super().__init__(name)
        self._context = context
        self._switch_time_s = finite("switch_time_s", switch_time_s, *budget.SETTLE_TIME_RANGE_S, " s")
        self._serial = serial
        self._open = True
        self._table: SimulatedOpticalTable | None = None

    @property
    def info(self) -> DeviceInfo:
        return DeviceInfo(driver="mock", vendor="labctl", model="SimShutter", serial=self._serial)

    def _connect(self) -> None:
        self._table = optical_table(self._context)
        self._table.attach("shutter", self)

    def _disconnect(self) -> None:
        if self._table is not None:
            self._table.detach("shutter", self)
            self._table = None

    def _move(self, open_: bool) -> None:
        self._require_open()
        assert self._table is not None
        self._table.clock.wait_until(self._table.clock.now() + self._switch_time_s)
        self._open = open_

    def open_beam(self) -> None:
        self._move(True)

    def block_beam(self) -> None:
        self._move(False)

    @property
    def beam_open(self) -> bool:
        self._require_open()
        return self._open


class MockPowerMeter(PowerMeter):
    """Reads the power leaving the input modulator, with 0.5 % reading noise (seeded)."""

    def __init__(self, name: str, context: BenchContext, seed: int = 0, serial: str = "SIM-PM") -> None:
        super().__init__(name)
        self._context = context
        self._rng = np.random.default_rng([integer("seed", seed, *budget.SEED_RANGE), 99])
        self._serial = serial
        self._wavelength_m = context.optics.wavelength_m
        self._table: SimulatedOpticalTable | None = None

    @property
    def info(self) -> DeviceInfo:
        return DeviceInfo(driver="mock", vendor="labctl", model="SimPowerMeter", serial=self._serial)

    def _connect(self) -> None:
        self._table = optical_table(self._context)

    def _disconnect(self) -> None:
        self._table = None

    @property
    def wavelength_m(self) -> float:
        return self._wavelength_m

    @wavelength_m.setter
    def wavelength_m(self, value: float) -> None:
        if not 400e-9 <= value <= 1100e-9:
            raise InvalidSetting(self.name, f"wavelength {value:g} m outside the sensor's 400–1100 nm")
        self._wavelength_m = value

    def read_power_w(self, timeout_s: float = 2.0) -> float:
        self._require_open()
        assert self._table is not None
        if not self._table.beam_open:
            return abs(self._rng.normal(0, 1e-12))
        inp = self._table._need("input_slm")
        true_power = self._table.input_power_w(inp.shown_gray)
        # A sensor corrected for the wrong wavelength misreads in proportion (silicon responsivity ~ λ).
        misread = self._context.optics.wavelength_m / self._wavelength_m
        return true_power * misread * (1 + self._rng.normal(0, 0.005))
