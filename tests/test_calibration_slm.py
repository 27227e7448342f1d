"""SLM phase calibration: unfolding and fitting on synthetic data, and the full measurement on the small bench."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.errors import AmbiguousMeasurement, EmptyFrames
from calibration.records import load_record
from calibration.run import calibrate_slm
from calibration.slm_phase import PhaseSweepSettings, check_range, fit_global, grating, lut_from_curve, unfold
from mock_hw.truth import reveal_truth

TWO_PI = 2 * np.pi
FAST = PhaseSweepSettings(regions=2, levels=48, region_levels=12, table_regions=4)


def _truth_phase(t: np.ndarray) -> np.ndarray:
    return 1.15 * TWO_PI * t**1.1 * (1 + 0.2 * (1 - t))


def test_unfold_and_fit_recover_a_monotone_response_beyond_2pi() -> None:
    rng = np.random.default_rng(0)
    t = np.linspace(0, 1, 64)
    phase = _truth_phase(t)
    intensity = 1000 * np.sin(phase / 2) ** 2 + 50 + rng.normal(0, 2, t.size)
    rough, amp, _ = unfold(intensity)
    assert np.all(np.abs(rough - phase)[np.abs(np.sin(phase / 2)) < 0.9] < 0.3)
    model, inc, fit = fit_global(t, intensity, knots=8)
    assert np.sqrt(np.mean((fit.phase - phase) ** 2)) < 0.03
    assert np.all(np.diff(model.evaluate(inc, np.linspace(0, 1, 256))) >= 0)


def test_garbage_intensities_are_not_fitted() -> None:
    rng = np.random.default_rng(1)
    t = np.linspace(0, 1, 64)
    with pytest.raises(AmbiguousMeasurement, match="no phase modulation"):
        unfold(np.full(64, 7.0))
    _, _, fit = fit_global(t, rng.uniform(0, 1000, 64), knots=8)
    assert fit.residual_rms > 0.1  # measure_phase_response refuses above 5 %
    with pytest.raises(AmbiguousMeasurement, match="reaches only 5.00 rad"):
        check_range(5.0, 256, "slm")


def test_lookup_table_picks_the_nearest_phase_modulo_2pi() -> None:
    curve = np.linspace(0, 1.2 * TWO_PI, 256)
    lut = lut_from_curve(curve, 512)
    err = np.angle(np.exp(1j * (curve[lut] - np.arange(512) * TWO_PI / 512)))
    assert np.abs(err).max() <= (curve[1] - curve[0]) / 2 + 1e-9


def test_grating_keeps_the_centre_at_gray_zero_and_complement_swaps_levels() -> None:
    g = grating((32, 32), 8, 100, keep_centre=1)
    c = grating((32, 32), 8, 100, complement=True, keep_centre=1)
    assert g[16, 16] == 0 and c[15:18, 15:18].max() == 0
    assert set(np.unique(g)) == {0, 100} and np.all((g[0] == 0) != (c[0] == 0))


def test_small_bench_phase_table_matches_the_hidden_response(small_bench, tmp_path) -> None:
    path = calibrate_slm(small_bench, tmp_path, settings=FAST)
    rec = load_record(path, device=small_bench.fourier_slm.info, wavelength_m=532e-9)
    truth = reveal_truth(small_bench.fourier_slm).response
    slm = small_bench.fourier_slm
    assert slm.phase_table.record_id == rec.id  # the new table is active on the open bench
    errors = []
    for theta in np.linspace(0, TWO_PI, 64, endpoint=False):
        gray = slm.phase_table.gray_for_phase(np.full(slm.grid.shape, theta))
        errors.append(np.angle(np.exp(1j * (truth.phase(gray) - theta))))
    assert np.sqrt(np.mean(np.square(errors))) < 0.08
    assert abs(rec.params["phase_at_full_scale_rad"] - truth.phi_max_rad) < 0.15
    assert (tmp_path / "raw" / "slm_phase.npz").is_file() and path.with_suffix(".png").is_file()


def test_laser_off_stops_with_advice_and_keeps_raw_data(small_bench, tmp_path) -> None:
    small_bench.shutter.block_beam()
    with pytest.raises(EmptyFrames, match="check the laser") as info:
        calibrate_slm(small_bench, tmp_path, settings=FAST)
    assert "raw measurements kept in" in str(info.value)
    assert (tmp_path / "raw" / "slm_phase.npz").is_file()
    assert not list(tmp_path.glob("slm_phase-*.json"))  # no half-fitted table


def test_fringing_reference_uses_the_corner_regions_at_one_longer_period() -> None:
    from calibration.slm_phase import multiplex_layout, outer_regions, reference_grating, region_slices

    shape = (256, 256)
    regions = region_slices(shape, 4)
    layout = multiplex_layout(shape, (64, 64), 4, (100.0, 100.0))
    corners = outer_regions(regions, layout)
    assert sorted(corners) == [0, 3, 12, 15]  # the input leak's cross-shaped sidelobes run through the others
    pattern = reference_grating(shape, regions, corners, 32, 200)
    assert pattern[64:192].max() == 0 and pattern[:, 64:192].max() == 0
    assert set(np.unique(pattern[:64, :64])) == {0, 200} and np.array_equal(pattern[:64, :64], pattern[:64, 192:])


def test_undo_fringing_divides_each_region_by_its_compression() -> None:
    from calibration.slm_phase import _undo_fringing, grating_frequency_sq, multiplex_layout, region_slices

    shape = (256, 256)
    regions = region_slices(shape, 4)
    layout = multiplex_layout(shape, (64, 64), 4, (100.0, 100.0))
    true = _truth_phase(np.arange(256) / 255)
    alpha = np.full(256, 0.012 / grating_frequency_sq((3, 0), layout.period))  # 1.2 % on the axis gratings
    u = np.array([grating_frequency_sq(v, layout.period) for v in layout.vectors])
    apparent = np.stack([true * (1 - alpha * ur) for ur in u]).reshape(4, 4, 256)
    glob, curves, warps = _undo_fringing(alpha, layout, regions, true * (1 - alpha * u.mean()), apparent)
    assert np.max(np.abs(glob - true)) < 1e-9 and np.max(np.abs(curves - true)) < 1e-6
    assert np.allclose(warps[..., 0], 1, atol=1e-6) and np.allclose(warps[..., 1], 0, atol=1e-6)


def test_fringing_compression_is_measured_and_undone_on_the_default_bench(tmp_path, one_torch_thread) -> None:
    """Default bench, benchmark seed 3 (fringing σ 0.62 px): the multiplexed gratings (stripes ~11 px)
    read the phase 1.2 % short; before the fringing reference the table was 0.0506 rad RMS off."""
    import sys
    import tomllib
    from importlib import resources
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import calibration_accuracy as accuracy

    base = tomllib.loads(resources.files("mock_hw").joinpath("default_bench.toml").read_text())
    with accuracy.bench_for_seed(base, 3).open() as bench:
        path = calibrate_slm(bench, tmp_path)
        record = load_record(path)
        assert record.params["fringing_reference_regions"] == [0, 3, 12, 15]
        assert 0.004 < record.params["fringing_compression_at_half_scale"] < 0.03  # measured 0.009
        assert accuracy.phase_error(bench, path) <= 0.03  # measured 0.0157


def test_lookup_table_stays_on_one_branch_of_a_response_beyond_2pi() -> None:
    """Fringing smooths neighbouring pixels' voltages: a table that jumped between φ and φ + 2π for
    neighbouring phases would put a 2π step between them. One branch: gray rises with the target
    phase and wraps once, where the target does."""
    curve = _truth_phase(np.linspace(0, 1, 256))  # reaches 1.15·2π
    lut = lut_from_curve(curve, 1024).astype(int)
    steps = np.diff(lut)
    assert np.all(steps >= 0) or (np.sum(steps < 0) == 1 and lut[-1] == 0)
    assert curve[lut].max() < TWO_PI + np.max(np.diff(curve))  # the upper branch (φ > 2π) is never used
    short = lut_from_curve(np.linspace(0, 0.9 * TWO_PI, 200), 64).astype(int)  # a response short of 2π
    assert np.sum(np.diff(short) < 0) == 1 and short[-1] == 0  # past its top: the nearer, modulo 2π, is gray 0
