"""Simulated camera on the simulated optical table.

Frames are rendered lazily, in batches: a trigger (software, or a hardware pulse per pattern of the
input modulator's sequence) queues an exposure with a snapshot of what the modulators show; reading
renders all queued exposures that share a Fourier mask in one vectorised physics call.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from drivers.bench import BenchContext
from drivers.camera import Frame, FrameBatch, TriggerSource
from drivers.capabilities import ReadoutTime
from drivers.device import DeviceInfo
from drivers.errors import DeviceDisconnected, DeviceTimeout
from drivers.frame_queue import BufferedCamera, UnreadBuffer
from drivers.limits import finite, integer, integers
from drivers.slm import PixelGrid
from labctl.device import resolve_device
from mock_hw import budget
from mock_hw.faults import FaultPlan
from mock_hw.optical_table import SimulatedOpticalTable
from mock_hw.realism.devices import draw_camera_realism
from mock_hw.realism.options import camera_options
from mock_hw.realism.sensor_plane import half_diagonal_m
from mock_hw.sensor import SensorModel
from mock_hw.slm import optical_table
from mock_hw.truth import draw_camera_truth


@dataclass(frozen=True)
class _Exposure:
    input_gray: np.ndarray
    fourier_gray: np.ndarray
    beam_open: bool
    exposure_s: float
    gain: float
    frame_number: int
    start_s: float
    end_s: float


class MockCamera(BufferedCamera, ReadoutTime):
    """Simulated camera with hidden gain, noise, offset, hot pixels, misalignment and defocus.

    ``realtime=True`` makes reads wait until the modelled devices would have delivered the frame.
    ``noise=False`` gives the noiseless expectation (still quantised); ``ideal=True`` also removes
    misalignment and pixel non-uniformity. ``device`` (``auto``, ``cpu``, ``cuda[:N]``): where the
    whole bench's physics and this sensor run; frames come back to the host as a real camera's do.
    ``realism``: the bench file's ``[camera.realism]`` table (:mod:`mock_hw.realism.options`): lens
    aberrations, vignetting, distortion, sensor nonlinearity, stray light.
    """

    def __init__(
        self,
        name: str,
        context: BenchContext,
        seed: int = 0,
        rows: int = 240,
        cols: int = 240,
        pitch_m: float = 13e-6,
        bit_depth: int = 12,
        line_time_s: float = 10e-6,
        exposure_s: float = 1e-3,
        realtime: bool = False,
        noise: bool = True,
        ideal: bool = False,
        defocus_m: float = 0.0,
        misalignment: float = 1.0,
        buffer_size: int = 1024,
        serial: str | None = None,
        missed_trigger_rate: float = 0.0,
        disconnect_at_frames: list[int] | None = None,
        device: str = "cpu",
        realism: dict | None = None,
    ) -> None:
        super().__init__(name)
        self._grid = PixelGrid(rows, cols, pitch_m)
        budget.check_render_memory("camera", rows, cols)
        self._bit_depth = integer("bit_depth", bit_depth, *budget.CAMERA_BIT_DEPTH_RANGE)
        integer("seed", seed, *budget.SEED_RANGE)
        self._line_time_s = finite("line_time_s", line_time_s, *budget.LINE_TIME_RANGE_S, " s")
        self._exposure_s = finite("exposure_s", exposure_s, *self.exposure_limits_s, " s (the camera's exposure limits)")
        finite("defocus_m", defocus_m, *budget.DEFOCUS_RANGE_M, " m")
        finite("misalignment", misalignment, *budget.MISALIGNMENT_RANGE)
        integer("buffer_size", buffer_size, *budget.BUFFER_SIZE_RANGE)
        disconnect_at_frames = integers("disconnect_at_frames", disconnect_at_frames, *budget.FAULT_INDEX_RANGE)
        self._device = resolve_device(device)
        self._gain = 1.0
        self._realtime = realtime
        self._context = context
        self._seed = seed
        self._serial = serial or f"SIM-CAM-{seed}"
        self._truth = draw_camera_truth(
            seed, rows, cols, pitch_m, bit_depth, ideal=ideal, defocus_m=defocus_m, misalignment=misalignment
        )
        if realism is not None:
            hidden = draw_camera_realism(
                seed, camera_options(name, realism), self._truth.sensor.full_well_e,  # type: ignore[arg-type]
                half_diagonal_m(rows, cols, pitch_m, self._truth.pose),
            )
            self._truth = replace(self._truth, realism=hidden)
        self._sensor = SensorModel(self._truth.sensor, seed=seed, noise=noise, device=self._device)
        if realism is not None:
            self._sensor.response = self._truth.realism.nonlinearity  # type: ignore[union-attr]
        self._queue: UnreadBuffer[_Exposure] = UnreadBuffer(name, buffer_size)
        self._busy_until_s = 0.0
        self._table: SimulatedOpticalTable | None = None
        # Faults (off by default): missed triggers lose a frame; a disconnect kills the link until reopened.
        self._missed_trigger = FaultPlan(rate=missed_trigger_rate, seed=seed)
        self._disconnect_plan = FaultPlan(at=disconnect_at_frames, seed=seed)
        self._link_up = True

    # -- description ------------------------------------------------------------------------------
    @property
    def info(self) -> DeviceInfo:
        return DeviceInfo(driver="mock", vendor="labctl", model="SimCam", serial=self._serial)

    @property
    def grid(self) -> PixelGrid:
        return self._grid

    @property
    def bit_depth(self) -> int:
        return self._bit_depth

    @property
    def exposure_limits_s(self) -> tuple[float, float]:
        return (1e-5, 1.0)

    @property
    def gain_limits(self) -> tuple[float, float]:
        return (1.0, 16.0)

    @property
    def readout_s(self) -> float:
        return self._grid.rows * self._line_time_s


    # -- life cycle ----------------------------------------------------------------------------------
    @property
    def faults_injected(self) -> dict[str, int]:
        return {"missed_triggers": self._missed_trigger.fired, "disconnects": self._disconnect_plan.fired}

    def _connect(self) -> None:
        self._link_up = True
        self._busy_until_s = 0.0
        self._table = optical_table(self._context)
        self._table.attach("camera", self)
        self._table.use_device(self._device)
        self._table.clock.realtime = self._realtime

    def _disconnect(self) -> None:
        if self._table is not None:
            self._table.detach("camera", self)
            self._table = None
        self._queue.clear()

    # -- settings ---------------------------------------------------------------------------------------
    def _get_exposure(self) -> float:
        return self._exposure_s

    def _set_exposure(self, seconds: float) -> None:
        self._exposure_s = seconds

    def _get_gain(self) -> float:
        return self._gain

    def _set_gain(self, value: float) -> None:
        self._gain = value

    def _set_trigger_source(self, source: TriggerSource) -> None:
        """Both sources exist; hardware triggers come from the input modulator's pattern changes."""

    # -- triggering ---------------------------------------------------------------------------------------
    def _check_link(self) -> None:
        if not self._link_up:
            raise DeviceDisconnected(self.name, "link lost (simulated); close() and open() the camera to reconnect")

    def _enqueue(self, input_gray: np.ndarray, start_s: float) -> None:
        table = self._table
        assert table is not None
        if self._disconnect_plan.fires():
            self._link_up = False
        if not self._link_up:
            return  # a dead link sees no triggers
        if self._missed_trigger.fires():
            return  # the trigger pulse was missed: this frame never comes
        fourier = table._need("fourier_slm")
        start = max(start_s, fourier.ready_at_s, self._busy_until_s)
        end = start + self._exposure_s + self.readout_s
        self._busy_until_s = end
        self._queue.append(
            _Exposure(input_gray, fourier.shown_gray, table.beam_open, self._exposure_s, self._gain, self._queue.acquired, start, end)
        )

    def _software_trigger(self) -> None:
        table = self._table
        assert table is not None
        self._check_link()
        inp = table._need("input_slm")
        self._enqueue(inp.shown_gray, max(table.clock.now(), inp.ready_at_s))

    def on_input_sequence(self, patterns: np.ndarray, settle_s: float) -> None:
        """The input modulator sends one trigger pulse per pattern it shows."""
        if not self.is_open or self.trigger_source is not TriggerSource.HARDWARE:
            return
        assert self._table is not None
        for pattern in patterns:
            shown = max(self._table.clock.now(), self._busy_until_s)
            self._enqueue(pattern, shown + settle_s)

    # -- reading -----------------------------------------------------------------------------------------
    def _read_frame(self, timeout_s: float) -> Frame:
        return self._read_frames(1, timeout_s).frame(0)

    def _discard_unread(self) -> int:
        self._check_link()
        n = len(self._queue)
        self._queue.clear()
        return n

    def _read_frames(self, n: int, timeout_s: float) -> FrameBatch:
        table = self._table
        assert table is not None
        self._check_link()
        if len(self._queue) < n:
            if table.clock.realtime:
                table.clock.wait_until(table.clock.now() + timeout_s)
            raise DeviceTimeout(
                self.name,
                f"asked for {n} frame(s), {len(self._queue)} arrived within {timeout_s:g} s "
                f"(trigger source: {self.trigger_source}; was the camera triggered?)",
            )
        exposures = self._queue.take(n)
        data = np.empty((n, *self._grid.shape), dtype=np.uint16)
        start = 0
        while start < n:
            first = exposures[start]
            stop = start + 1
            while (
                stop < n
                and stop - start < budget.RENDER_CHUNK
                and exposures[stop].fourier_gray is first.fourier_gray
                and exposures[stop].beam_open == first.beam_open
                and exposures[stop].exposure_s == first.exposure_s
                and exposures[stop].gain == first.gain
            ):
                stop += 1
            inputs = np.stack([e.input_gray for e in exposures[start:stop]])
            starts = np.array([e.start_s for e in exposures[start:stop]])
            power = table.camera_power(inputs, first.fourier_gray, first.beam_open, starts, first.exposure_s)
            data[start:stop] = self._sensor.expose(power, first.exposure_s, table.optics.wavelength_m, first.gain)
            start = stop
        table.clock.wait_until(exposures[-1].end_s)
        return FrameBatch(
            data=data,
            frame_numbers=np.array([e.frame_number for e in exposures], dtype=np.int64),
            timestamps_s=np.array([e.start_s for e in exposures]),
            exposure_s=exposures[-1].exposure_s,
            gain=exposures[-1].gain,
        )
