"""Automatic exposure: lands in range on a normal bench, and says what to change when it cannot."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.acquisition import Acquirer, RetryPolicy
from calibration.errors import EmptyFrames, SaturatedFrames
from calibration.exposure import auto_exposure
from drivers.bench import BenchSpec
from tests.conftest import bench_toml


def _acquirer(bench) -> Acquirer:
    return Acquirer(bench, np.zeros(bench.fourier_slm.grid.shape, np.uint16), RetryPolicy(attempts=2, first_backoff_s=0))


def test_exposure_brings_the_peak_near_the_target(small_bench) -> None:
    acquirer = _acquirer(small_bench)
    image = np.zeros((2, *small_bench.input_slm.grid.shape), np.float32)
    image[:, 40:60, 40:60] = 1.0
    small_bench.camera.exposure_s = 1e-5
    auto_exposure(acquirer, image, target_fraction=0.6)
    frame = acquirer.capture(image).data.astype(float)
    peak = np.percentile(frame, 99.99) / small_bench.camera.max_level
    assert 0.4 < peak < 0.8 and frame.max() < small_bench.camera.max_level


def test_blocked_beam_and_too_much_light_are_named() -> None:
    with BenchSpec.from_toml(bench_toml()).open() as bench:
        bench.shutter.block_beam()
        with pytest.raises(EmptyFrames, match="stay dark.*beam"):
            auto_exposure(_acquirer(bench), np.ones((1, *bench.input_slm.grid.shape), np.float32))
    text = bench_toml().replace("[camera]\n", "[camera]\nexposure_s = 0.5\n").replace('driver = "mock"\nseed = 1', 'driver = "mock"\nseed = 1\nlaser_power_w = 10.0')
    with BenchSpec.from_toml(text).open() as bench:  # 5e7 times the default laser: clips even at 10 µs
        with pytest.raises(SaturatedFrames, match="saturate even at"):
            auto_exposure(_acquirer(bench), np.ones((1, *bench.input_slm.grid.shape), np.float32))
