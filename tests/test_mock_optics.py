"""The simulated bench's physics at bench level: a flat mirror, the transmission cache, shot noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from drivers.bench import BenchSpec
from mock_hw import optical_table as table_module
from mock_hw.sensor import NORMAL_SHOT_NOISE_FROM_E, shot_noise
from mock_hw.slm import optical_table
from mock_hw.truth import reveal_truth
from tests.conftest import bench_toml


def test_a_uniform_field_through_a_flat_mirror_reaches_the_camera_uniform() -> None:
    """Ideal devices (100 % fill), no noise: the camera frame is flat away from the image's edge."""
    with BenchSpec.from_toml(bench_toml(ideal=True, noise=False)).open() as bench:
        bench.input_slm.write_amplitude(np.ones(bench.input_slm.grid.shape))
        bench.fourier_slm.write_gray(np.zeros(bench.fourier_slm.grid.shape, dtype=np.uint16))
        bench.camera.exposure_s = 2e-4
        frame = bench.camera.capture().data.astype(float) - reveal_truth(bench.camera).sensor.dark_offset_dn
    inner = frame[10:-10, 10:-10]
    assert inner.mean() > 500  # well above the quantisation
    assert np.abs(inner / inner.mean() - 1).max() < 0.03  # the former model: 0.60–0.71 of the centre off axis


def test_the_fourier_transmission_is_built_once_per_pattern(mocker) -> None:
    spy = mocker.spy(table_module, "phase_transmission")
    with BenchSpec.from_toml(bench_toml(ideal=True, noise=False)).open() as bench:
        slm, cam = bench.fourier_slm, bench.camera
        pattern = np.random.default_rng(0).integers(0, 256, slm.grid.shape).astype(np.uint16)
        slm.write_gray(pattern)
        for _ in range(3):
            cam.capture()
        assert spy.call_count == 1
        slm.write_gray(pattern.copy())  # the same pattern again: nothing to rebuild
        cam.capture()
        assert spy.call_count == 1
        pattern[0, 0] ^= 1  # changed in place and shown again: rebuilt
        slm.write_gray(pattern)
        cam.capture()
        assert spy.call_count == 2
        table = optical_table(bench.context)
        table.use_device(torch.device("cpu"))  # a new device forgets it
        cam.capture()
        assert spy.call_count == 3


@pytest.mark.parametrize("mean", [0.2, 3.0, 40.0, NORMAL_SHOT_NOISE_FROM_E, 2500.0])
def test_shot_noise_has_the_poisson_mean_and_variance_below_and_above_the_threshold(mean: float) -> None:
    counts = shot_noise(torch.full((400_000,), mean), torch.Generator().manual_seed(1)).double()
    assert torch.all(counts == counts.round()) and counts.min() >= 0
    sigma = np.sqrt(mean / counts.numel())
    assert abs(float(counts.mean()) - mean) < 5 * sigma
    # variance of a Poisson sample: λ, within five standard errors (√(2λ²/n) for large λ)
    assert abs(float(counts.var()) - mean) < 5 * np.sqrt((2 * mean**2 + mean) / counts.numel()) + 1 / 12
    if mean < NORMAL_SHOT_NOISE_FROM_E:  # exact below the threshold: the probability of zero counts
        assert float((counts == 0).double().mean()) == pytest.approx(np.exp(-mean), abs=5 * np.sqrt(np.exp(-mean) / counts.numel()) + 1e-4)


def test_a_frame_of_bright_and_dim_pixels_is_drawn_in_both_regimes() -> None:
    """Mostly bright (normal above the threshold, exact below) and mostly dim (exact throughout)."""
    for bright_fraction in (0.9, 0.1):
        n = 200_000
        means = torch.where(torch.rand(n, generator=torch.Generator().manual_seed(2)) < bright_fraction, 2500.0, 0.5)
        counts = shot_noise(means, torch.Generator().manual_seed(3)).double()
        for level in (2500.0, 0.5):
            picked = counts[means == level]
            assert abs(float(picked.mean()) - level) < 5 * np.sqrt(level / picked.numel())
            assert abs(float(picked.var()) - level) < 5 * np.sqrt((2 * level**2 + level) / picked.numel()) + 1 / 12
