"""Injected faults on the simulated bench behave like the real ones they stand for."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.bench import BenchSpec
from drivers.errors import DeviceDisconnected, DeviceError, DeviceTimeout
from tests.conftest import bench_toml


def _bench(extra_camera: str = "", extra_fourier: str = ""):
    text = bench_toml(extra_camera=extra_camera)
    text = text.replace("pitch_m = 16e-6", "pitch_m = 16e-6\n" + extra_fourier)
    return BenchSpec.from_toml(text).open()


def test_missed_triggers_lose_frames_at_the_configured_rate() -> None:
    with _bench("missed_trigger_rate = 0.1") as bench:
        cam, inp = bench.camera, bench.input_slm
        cam.trigger_source = "hardware"
        inp.write_amplitude(np.ones((400, *inp.grid.shape)) * 0.5)
        missed = cam.faults_injected["missed_triggers"]
        assert 20 <= missed <= 60
        with pytest.raises(DeviceTimeout):
            cam.read_frames(400, timeout_s=0.01)
        assert cam.discard_unread() == 400 - missed


def test_disconnect_kills_the_link_until_reopened() -> None:
    with _bench("disconnect_at_frames = [3]") as bench:
        cam = bench.camera
        bench.input_slm.write_amplitude(np.ones(bench.input_slm.grid.shape))
        for _ in range(3):
            cam.capture()
        with pytest.raises(DeviceDisconnected, match="camera: link lost.*reconnect"):
            cam.capture()  # the link drops on the 4th trigger
        with pytest.raises(DeviceDisconnected):
            cam.trigger()
        cam.close()
        cam.open()
        assert cam.capture().data.max() > 0
        assert cam.faults_injected == {"missed_triggers": 0, "disconnects": 1}


def test_slm_write_failure_shows_nothing() -> None:
    with _bench(extra_fourier="write_failure_at = [1]") as bench:
        slm = bench.fourier_slm
        slm.write_gray(np.full(slm.grid.shape, 5, np.uint16))
        with pytest.raises(DeviceError, match="fourier_slm: pattern write failed"):
            slm.write_gray(np.full(slm.grid.shape, 9, np.uint16))
        assert np.all(slm.shown_gray == 5) and slm.frame_count == 1
        slm.write_gray(np.full(slm.grid.shape, 9, np.uint16))
        assert np.all(slm.shown_gray == 9)


def test_fault_rates_are_validated() -> None:
    from drivers.errors import BenchFileError

    with pytest.raises(BenchFileError, match="fault rate must be in"):
        _bench("missed_trigger_rate = 1.5")
