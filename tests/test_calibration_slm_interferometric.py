"""Split-screen interferometric SLM phase calibration: demodulation pieces on synthetic data, and the
full measurement on the small bench against the hidden response and the diffraction method."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.errors import EmptyFrames, LowFringeContrast
from calibration.records import load_record
from calibration.run import calibrate_slm
from calibration.slm_interferometric import InterferometricSettings, demodulate, fit_circle, fringe_frequency, split_screen, sweep_phase
from calibration.slm_phase import PhaseSweepSettings
from mock_hw.truth import reveal_truth

TWO_PI = 2 * np.pi
FAST = InterferometricSettings(levels=40, table_regions=4)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _panel_rms(slm, table) -> float:
    truth = reveal_truth(slm).response
    errors = []
    for theta in np.linspace(0, TWO_PI, 64, endpoint=False):
        gray = table.gray_for_phase(np.full(slm.grid.shape, theta))
        errors.append(np.angle(np.exp(1j * (truth.phase(gray) - theta))))
    return float(np.sqrt(np.mean(np.square(errors))))


def test_fringe_phase_is_recovered_about_the_circle_centre() -> None:
    rng = np.random.default_rng(0)
    rows, cols = 48, 64
    y, x = np.mgrid[:rows, :cols]
    freq = np.array([0.01, 0.17])
    phase = np.linspace(0, 1.2 * TWO_PI, 30) ** 1.1 / (1.2 * TWO_PI) ** 0.1
    # fringes of a pixel-gap-diluted order: amplitude of 0.9·e^{iφ} + 0.1, plus noise
    field = 0.9 * np.exp(1j * phase) + 0.1
    frames = np.stack([100 + 40 * np.abs(f) * np.cos(2 * np.pi * (freq[0] * y + freq[1] * x) + np.angle(f)) for f in field])
    frames += rng.normal(0, 1, frames.shape)
    found = fringe_frequency(frames[0], float(np.hypot(*freq)), axis=1)
    assert np.allclose(found, freq, atol=2e-3)
    z = demodulate(frames, np.ones((rows, cols)), found)
    centre, radius, resid = fit_circle(z)
    assert resid < 0.02
    sweep = sweep_phase(z, np.full(len(z), 100.0), "test", min_contrast=0.05)
    assert np.sqrt(np.mean((np.abs(sweep.phase) - phase) ** 2)) < 0.03
    with pytest.raises(LowFringeContrast, match="fringe visibility"):
        sweep_phase(z * 0.02, np.full(len(z), 100.0), "test", min_contrast=0.05)


def test_split_screen_holds_the_reference_off_the_gray_side() -> None:
    p = split_screen((32, 32), 8, 200, side=+1, axis=1)
    assert p[:, :20].max() == 0 and p[:, 20:].min() == 200
    m = split_screen((32, 32), 8, 200, side=-1, axis=0)
    assert m[:13].min() == 200 and m[13:].max() == 0


def test_interferometric_table_matches_the_truth_and_the_diffraction_method(small_bench, tmp_path) -> None:
    slm = small_bench.fourier_slm
    path = calibrate_slm(small_bench, tmp_path / "i", settings=FAST, method="interferometric")
    rec = load_record(path, device=slm.info, wavelength_m=532e-9)
    assert rec.params["method"] == "interferometric" and "interferometry" in rec.method
    assert slm.phase_table.record_id == rec.id
    assert _panel_rms(slm, slm.phase_table) < 0.06
    truth = reveal_truth(slm).response
    assert abs(rec.params["phase_at_full_scale_rad"] - truth.phi_max_rad) < 0.1
    assert path.with_suffix(".png").is_file() and (tmp_path / "i" / "raw" / "slm_phase.npz").is_file()
    other = load_record(calibrate_slm(small_bench, tmp_path / "d", settings=PhaseSweepSettings(regions=1, levels=48)))
    assert other.params["method"] == "diffraction"
    gap = np.angle(np.exp(1j * (rec.arrays["phase_global"] - other.arrays["phase_global"])))
    assert np.sqrt(np.mean(gap**2)) < 0.1


def test_a_modulator_without_the_grating_gives_no_fringes(small_bench, tmp_path, mocker) -> None:
    inp = small_bench.input_slm
    show = inp.write_amplitude
    mocker.patch.object(inp, "write_amplitude", side_effect=lambda a: show(np.full(inp.grid.shape, float(np.mean(a)))))
    with pytest.raises(LowFringeContrast, match="fringes") as info:
        calibrate_slm(small_bench, tmp_path, settings=FAST, method="interferometric")
    assert "raw measurements kept in" in str(info.value)
    assert not list(tmp_path.glob("slm_phase-*.json"))


def test_blocked_beam_stops_with_advice(small_bench, tmp_path) -> None:
    small_bench.shutter.block_beam()
    with pytest.raises(EmptyFrames, match="check the laser"):
        calibrate_slm(small_bench, tmp_path, settings=FAST, method="interferometric")
    assert (tmp_path / "raw" / "slm_phase.npz").is_file()


def test_binary_input_grating_and_the_weights_of_its_order_pairs(small_bench) -> None:
    from calibration.slm_interferometric import BINARY_DUTY, input_grating, order_weights, spot_offset_px

    k = spot_offset_px(small_bench, FAST.min_fringe_period_px)
    g = input_grating(small_bench, k, 1, binary=True)
    assert set(np.unique(g)) == {0.0, 1.0} and abs(g.mean() - BINARY_DUTY) < 0.05
    w1, w2 = order_weights(small_bench, k, 1, binary=False)
    assert w2 < 1e-3 * w1  # a cosine has no second order: the ±k spots alone
    w1, w2 = order_weights(small_bench, k, 1, binary=True)
    assert 0.5 < w2 / w1 < 1.0  # quarter duty: (0, 2k) nearly as strong as (−k, k); the tilt's lever arm counts it


def test_a_pwm_dmd_input_modulator_still_gives_one_fringe_circle(tmp_path) -> None:
    """A DMD makes gray by PWM; a ~1 ms exposure spans a partial PWM period, so a cosine grating's bit
    planes mix differently in every frame (fringe visibility 0.014 here, refused; lab bench: 7-11 %
    radial scatter, 0.069 rad). The binary grating is the same in every bit plane."""
    from drivers.bench import BenchSpec

    from tests.conftest import bench_toml

    text = bench_toml() + '\n[input_slm.realism]\nmodulator = "dmd"\npwm_period_s = 6.944e-4\n'
    with BenchSpec.from_toml(text, source="<small DMD bench>").open() as bench:
        rec = load_record(calibrate_slm(bench, tmp_path, settings=FAST, method="interferometric"))
        assert rec.params["input_grating"].startswith("binary")
        assert rec.residuals["circle_radial_rms_rel_max"] < 0.03  # measured 0.009
        assert _panel_rms(bench.fourier_slm, bench.fourier_slm.phase_table) < 0.06  # measured 0.032
