"""The simulated bench as a device: validation, determinism, timing, counters, hidden truth."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.bench import BenchSpec
from drivers.errors import DeviceTimeout, InvalidPattern, InvalidSetting, UnsupportedFeature
from mock_hw.truth import reveal_truth
from tests.conftest import bench_toml


def _capture_some(seeds: tuple[int, int, int]) -> np.ndarray:
    with BenchSpec.from_toml(bench_toml(seeds=seeds)).open() as bench:
        bench.input_slm.write_amplitude(np.random.default_rng(0).random(bench.input_slm.grid.shape))
        bench.fourier_slm.write_phase(np.zeros(bench.fourier_slm.grid.shape))
        return np.stack([bench.camera.capture().data for _ in range(2)])


def test_same_seed_gives_the_same_frames_and_another_seed_does_not() -> None:
    a = _capture_some((1, 2, 3))
    b = _capture_some((1, 2, 3))
    c = _capture_some((1, 2, 4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[0], a[1])  # shot and read noise differ frame to frame
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda s: s.write_gray(np.zeros((10, 10), np.uint16)), InvalidPattern, r"shape \(10, 10\) does not match"),
        (lambda s: s.write_gray(np.zeros(s.grid.shape, np.float32)), InvalidPattern, "integer array"),
        (lambda s: s.write_gray(np.full(s.grid.shape, 256)), InvalidPattern, r"outside 0..255 \(8-bit\).*max 256"),
        (lambda s: s.write_gray(np.full(s.grid.shape, -1)), InvalidPattern, "min -1"),
        (lambda s: s.write_phase(np.full(s.grid.shape, np.nan)), InvalidPattern, "NaN/inf"),
        (lambda s: s.write_phase(np.full(s.grid.shape, np.inf)), InvalidPattern, "NaN/inf"),
        (lambda s: s.write_phase(np.zeros((2, *s.grid.shape))), InvalidPattern, "sequence of 2"),
        (lambda s: s.write_phase(np.zeros(s.grid.shape, complex)), InvalidPattern, "real numbers"),
        (lambda s: s.write_amplitude(np.zeros(s.grid.shape)), UnsupportedFeature, "needs an input modulator"),
    ],
)
def test_bad_patterns_are_refused_and_nothing_is_written(small_bench, call, error, message) -> None:
    slm = small_bench.fourier_slm
    slm.write_gray(np.full(slm.grid.shape, 7, np.uint16))
    before, count = slm.shown_gray.copy(), slm.frame_count
    with pytest.raises(error, match=message) as info:
        call(slm)
    assert "fourier_slm" in str(info.value)
    np.testing.assert_array_equal(slm.shown_gray, before)
    assert slm.frame_count == count


def test_amplitude_out_of_range_is_refused(small_bench) -> None:
    with pytest.raises(InvalidPattern, match=r"input_slm: amplitude outside \[0, 1\]"):
        small_bench.input_slm.write_amplitude(np.full(small_bench.input_slm.grid.shape, 1.5))


@pytest.mark.parametrize("value", [0.0, 5.0, float("nan"), float("inf"), "1ms"])
def test_exposure_outside_limits_is_refused(small_bench, value) -> None:
    cam = small_bench.camera
    before = cam.exposure_s
    with pytest.raises(InvalidSetting, match="camera: exposure"):
        cam.exposure_s = value
    assert cam.exposure_s == before


def test_reading_without_a_trigger_times_out_with_a_clear_message(small_bench) -> None:
    with pytest.raises(DeviceTimeout, match="camera: asked for 1 frame.*was the camera triggered"):
        small_bench.camera.read_frame(timeout_s=0.05)
    with pytest.raises(InvalidSetting, match="finite positive"):
        small_bench.camera.read_frame(timeout_s=float("inf"))


def test_hardware_triggered_sequence_is_timed_by_the_devices(small_bench) -> None:
    cam, inp = small_bench.camera, small_bench.input_slm
    small_bench.fourier_slm.write_phase(np.zeros(small_bench.fourier_slm.grid.shape))
    cam.trigger_source = "hardware"
    cam.exposure_s = 1e-3
    inp.write_amplitude(np.random.default_rng(1).random((5, *inp.grid.shape)))
    batch = cam.read_frames(5)
    assert list(batch.frame_numbers) == [0, 1, 2, 3, 4]
    period = np.diff(batch.timestamps_s)
    np.testing.assert_allclose(period, inp.settle_time_s + cam.exposure_s + cam.readout_s)
    with pytest.raises(InvalidSetting, match="software trigger while"):
        cam.trigger()


def test_full_buffer_drops_the_oldest_frames_and_counts_them() -> None:
    with BenchSpec.from_toml(bench_toml(extra_camera="buffer_size = 3")).open() as bench:
        cam, inp = bench.camera, bench.input_slm
        cam.trigger_source = "hardware"
        inp.write_amplitude(np.ones((5, *inp.grid.shape)))
        batch = cam.read_frames(3)
        assert cam.frames_acquired == 5 and cam.frames_lost == 2
        assert list(batch.frame_numbers) == [2, 3, 4]


def test_blocked_beam_gives_dark_frames_at_the_offset(small_bench) -> None:
    small_bench.input_slm.write_amplitude(np.ones(small_bench.input_slm.grid.shape))
    lit = small_bench.camera.capture().data.mean()
    small_bench.shutter.block_beam()
    dark = small_bench.camera.capture().data.astype(float)
    offset = reveal_truth(small_bench.camera).sensor.dark_offset_dn
    assert abs(np.median(dark) - offset) < 3
    assert lit > offset + 500


def test_saturation_at_long_exposure(small_bench) -> None:
    small_bench.input_slm.write_amplitude(np.ones(small_bench.input_slm.grid.shape))
    small_bench.camera.exposure_s = 0.5
    assert small_bench.camera.capture().data.max() == 4095


def test_phase_table_maps_radians_to_gray_levels(small_bench) -> None:
    slm = small_bench.fourier_slm
    slm.write_phase(np.full(slm.grid.shape, np.pi))
    assert np.all(slm.shown_gray == 128)
    slm.write_phase(np.full(slm.grid.shape, 2 * np.pi + 0.5 * np.pi))  # wraps
    assert np.all(slm.shown_gray == 64)


def test_hidden_truth_is_only_reachable_through_the_accessor(small_bench) -> None:
    truth = reveal_truth(small_bench.fourier_slm)
    assert truth.response.phi_max_rad != pytest.approx(2 * np.pi, abs=0.05)  # not exactly 2π
    assert not any("truth" in name for name in dir(small_bench.fourier_slm) if not name.startswith("_"))
    with pytest.raises(TypeError, match="not a simulated device"):
        reveal_truth(object())


def test_devices_close_idempotently_and_refuse_use_when_closed() -> None:
    bench = BenchSpec.from_toml(bench_toml()).open()
    cam = bench.camera
    bench.close()
    bench.close()
    with pytest.raises(Exception, match="camera: device is not open"):
        cam.capture()
