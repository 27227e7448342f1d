"""Simulated SLMs: a phase modulator for the Fourier plane, an amplitude modulator (DMD-like, holds
a pattern sequence) for the input plane. Their hidden truth is drawn from ``seed``."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from drivers.bench import BenchContext
from drivers.capabilities import HardwareSequence, PatternReadback
from drivers.device import DeviceInfo
from drivers.errors import DeviceError
from drivers.limits import finite, integer, integers
from drivers.slm import SLM, PixelGrid, SLMRole
from mock_hw import budget
from mock_hw.faults import FaultPlan
from mock_hw.optical_table import SimulatedOpticalTable
from mock_hw.realism.devices import draw_fourier_realism, draw_input_realism
from mock_hw.realism.options import fourier_options, input_options
from mock_hw.truth import draw_fourier_slm_truth, draw_input_slm_truth

TABLE_KEY = "mock_optical_table"


def optical_table(context: BenchContext) -> SimulatedOpticalTable:
    """The simulated optical table shared by the mock devices of one bench."""
    return context.shared(TABLE_KEY, lambda: SimulatedOpticalTable(context.optics))


class MockSLM(SLM, HardwareSequence, PatternReadback):
    """Simulated SLM.

    Fourier role: hidden nonlinear gray→phase response (φ_max ≠ 2π, regional variation), fringing
    crosstalk, fill factor. Input role: amplitude ∝ gray level with finite contrast, lit by a
    Gaussian laser beam of hidden waist and power; holds sequences of up to 4096 patterns.
    ``ideal=True`` removes every non-ideality (for physics tests). ``realism``: the bench file's
    ``[input_slm.realism]`` / ``[fourier_slm.realism]`` table (:mod:`mock_hw.realism.options`), lab
    non-idealities beyond these (DMD or LC input, drifts, flicker, surface bow, sub-pixel fringing).
    """

    def __init__(
        self,
        name: str,
        role: SLMRole | str,
        context: BenchContext,
        seed: int = 0,
        rows: int | None = None,
        cols: int | None = None,
        pitch_m: float | None = None,
        bit_depth: int = 8,
        settle_time_s: float | None = None,
        laser_power_w: float = 2e-7,
        ideal: bool = False,
        serial: str | None = None,
        write_failure_rate: float = 0.0,
        write_failure_at: list[int] | None = None,
        realism: dict | None = None,
    ) -> None:
        super().__init__(name, role)
        fourier = self.role is SLMRole.FOURIER
        side = 256 if fourier else 200
        self._grid = PixelGrid(
            side if rows is None else rows, side if cols is None else cols,
            (8e-6 if fourier else 15e-6) if pitch_m is None else pitch_m,
        )
        budget.check_render_memory(f"{self.role}_slm", *self._grid.shape)
        self._bit_depth = integer("bit_depth", bit_depth, *budget.SLM_BIT_DEPTH_RANGE)
        integer("seed", seed, *budget.SEED_RANGE)
        # LC phase SLMs settle in ~10 ms; DMD-like input modulators in ~0.1 ms (shared/REFERENCES.md).
        self._settle_s = finite(
            "settle_time_s", (10e-3 if fourier else 1e-4) if settle_time_s is None else settle_time_s,
            *budget.SETTLE_TIME_RANGE_S, " s",
        )
        finite("laser_power_w", laser_power_w, *budget.LASER_POWER_RANGE_W, " W")
        write_failure_at = integers("write_failure_at", write_failure_at, *budget.FAULT_INDEX_RANGE)
        self._context = context
        self._seed = seed
        self._serial = serial or f"SIM-{self.role}-{seed}"
        self._sequence_length = 1 if fourier else 4096  # an LC phase panel holds one pattern, a DMD many
        if fourier:
            self._truth = draw_fourier_slm_truth(seed, bit_depth, ideal=ideal)
        else:
            aperture = max(self._grid.rows, self._grid.cols) * self._grid.pitch_m
            self._truth = draw_input_slm_truth(seed, aperture, laser_power_w, ideal=ideal)
        if realism is not None:
            if fourier:
                hidden = draw_fourier_realism(seed, fourier_options(name, realism))  # type: ignore[arg-type]
            else:
                hidden = draw_input_realism(seed, input_options(name, realism), self._bit_depth)  # type: ignore[arg-type]
            self._truth = replace(self._truth, realism=hidden)
        self._gray = np.zeros(self._grid.shape, dtype=np.uint16)
        self.ready_at_s = 0.0  # simulated time at which the last pattern has settled
        self._table: SimulatedOpticalTable | None = None
        self._write_failure = FaultPlan(rate=write_failure_rate, at=write_failure_at, seed=seed)

    @property
    def faults_injected(self) -> dict[str, int]:
        return {"write_failures": self._write_failure.fired}

    @property
    def info(self) -> DeviceInfo:
        model = "SimPhaseSLM" if self.role is SLMRole.FOURIER else "SimAmplitudeSLM"
        return DeviceInfo(driver="mock", vendor="labctl", model=model, serial=self._serial)

    @property
    def grid(self) -> PixelGrid:
        return self._grid

    @property
    def bit_depth(self) -> int:
        return self._bit_depth

    @property
    def wavelength_m(self) -> float:
        return self._context.optics.wavelength_m

    @property
    def settle_time_s(self) -> float:
        return self._settle_s

    @property
    def max_sequence_length(self) -> int:
        return self._sequence_length

    @property
    def shown_gray(self) -> np.ndarray:
        """The pattern now on the panel (the last one of a sequence)."""
        return self._gray

    def _connect(self) -> None:
        self._table = optical_table(self._context)
        self._table.attach(f"{self.role}_slm", self)

    def _disconnect(self) -> None:
        if self._table is not None:
            self._table.detach(f"{self.role}_slm", self)
            self._table = None

    def _show_gray(self, levels: np.ndarray) -> None:
        assert self._table is not None
        if self._write_failure.fires():
            raise DeviceError(self.name, "pattern write failed (simulated driver error); nothing was shown")
        now = self._table.clock.now()
        if levels.ndim == 3:
            self._gray = levels[-1]
            if self._table.camera is not None:
                self._table.camera.on_input_sequence(levels, self._settle_s)
        else:
            self._gray = levels
            self.ready_at_s = now + self._settle_s
            if self.role is SLMRole.INPUT and self._table.camera is not None:
                self._table.camera.on_input_sequence(levels[None], self._settle_s)
