"""The Fourier SLM's fringing width and fill factor: the zero-order model, its fit, the measurement on
simulated panels whose hidden truth differs, and how the result reaches the layout and the twin."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest

from calibration.active import phase_table_from_record
from calibration.errors import AmbiguousMeasurement, CalibrationError
from calibration.exposure import peak_over
from calibration.records import load_record
from calibration.run import calibrate_slm
from calibration.slm_fringing import fit_fringing, grating_ratio, zero_order_ratio
from drivers.bench import BenchSpec
from drivers.errors import PhaseTableError
from drivers.phase_table import PhaseTable
from labctl.optics.layout import LayoutError, OpticalLayout
from labctl.optics.twin import FourFTwin, TwinAssumptions
from mock_hw.truth import reveal_truth


def test_zero_order_model_vanishes_without_fringing_and_grows_with_it() -> None:
    assert zero_order_ratio(2, 0.0) == pytest.approx(0.0, abs=1e-12)
    assert zero_order_ratio(4, 0.0) == pytest.approx(0.0, abs=1e-12)
    widths = np.linspace(0.2, 0.8, 13)  # past ~1 px the period-2 bars are smoothed flat: r(2) = 1
    for period in (2, 4):
        r = [zero_order_ratio(period, s) for s in widths]
        assert np.all(np.diff(r) > 0)
    assert zero_order_ratio(2, 1.5) == pytest.approx(1.0, abs=1e-4)
    assert all(zero_order_ratio(4, s) < zero_order_ratio(2, s) for s in widths)  # finer bars: more edge per pixel
    assert grating_ratio(2, 0.0, 0.9) == pytest.approx(0.01)  # the gaps' unmodulated light alone
    with pytest.raises(AmbiguousMeasurement, match="even period"):
        zero_order_ratio(3, 0.5)


@pytest.mark.parametrize(("sigma", "fill"), [(0.3, 0.97), (0.55, 0.93), (0.9, 0.85)])
def test_fit_recovers_width_and_fill_factor_from_noisy_ratios(sigma: float, fill: float) -> None:
    rng = np.random.default_rng(int(sigma * 100))
    periods = np.array([2, 2, 4, 4])
    ratios = np.array([grating_ratio(int(p), sigma, fill) for p in periods]) + rng.normal(0, 0.0005, 4)  # the mock's misfit ~0.001
    got_sigma, got_fill, rms = fit_fringing(periods, ratios)
    assert got_sigma == pytest.approx(sigma, abs=0.03)
    assert got_fill == pytest.approx(fill, abs=0.03)  # weakly determined where both are small: (1 - F)² is all there is
    assert rms < 0.002


def _default_bench_with_fourier_seed(seed: int) -> BenchSpec:
    text = resources.files("mock_hw").joinpath("default_bench.toml").read_text()
    assert "[fourier_slm]\ndriver = \"mock\"\nseed = 2\n" in text
    text = text.replace("[fourier_slm]\ndriver = \"mock\"\nseed = 2\n", f"[fourier_slm]\ndriver = \"mock\"\nseed = {seed}\n")
    return BenchSpec.from_toml(text, source=f"<default bench, Fourier SLM seed {seed}>")


@pytest.mark.parametrize("seed", [2, 18])  # hidden σ 0.367 / 0.696 px, fill factor 0.950 / 0.948
def test_calibration_measures_the_hidden_fringing_and_fill_factor(seed: int, tmp_path, one_torch_thread) -> None:
    with _default_bench_with_fourier_seed(seed).open() as bench:
        truth = reveal_truth(bench.fourier_slm)
        path = calibrate_slm(bench, tmp_path)
        table = bench.fourier_slm.phase_table
    record = load_record(path)
    assert record.params["fringing_sigma_px"] == pytest.approx(truth.crosstalk_sigma_px, abs=0.04)  # measured 0.362, 0.699
    assert record.params["fill_factor"] == pytest.approx(truth.fill_factor, abs=0.05)  # measured 0.916, 0.945
    assert len(record.params["fringing_zero_order_ratios"]) == 4
    assert table.fringing_sigma_px == record.params["fringing_sigma_px"]  # the active table carries them
    assert table.fill_factor == record.params["fill_factor"]


def test_ideal_panel_reads_no_fringing(ideal_bench, tmp_path) -> None:
    from calibration.slm_phase import PhaseSweepSettings

    path = calibrate_slm(ideal_bench, tmp_path, settings=PhaseSweepSettings(regions=2, levels=48, region_levels=12, table_regions=4))
    record = load_record(path)
    assert record.params["fringing_sigma_px"] < 0.26  # below ~0.25 px the zero order cannot see a width
    assert record.params["fill_factor"] > 0.97


def test_a_failed_fringing_measurement_keeps_the_phase_table(small_bench, tmp_path, monkeypatch) -> None:
    import calibration.run as run
    from calibration.slm_phase import PhaseSweepSettings

    def refuse(*args, **kwargs):
        raise AmbiguousMeasurement("SIM-fourier: stray light")

    monkeypatch.setattr(run, "measure_fringing", refuse)
    messages: list[str] = []
    path = calibrate_slm(small_bench, tmp_path, lambda message, fraction: messages.append(message),
                         settings=PhaseSweepSettings(regions=2, levels=48, region_levels=12, table_regions=4))
    record = load_record(path)
    assert "stray light" in record.params["fringing_not_measured"] and "fringing_sigma_px" not in record.params
    table = small_bench.fourier_slm.phase_table
    assert table.record_id == record.id and (table.fringing_sigma_px, table.fill_factor) == (0.0, 1.0)
    assert any("fringing not measured" in m for m in messages)


def test_unmeasurable_panels_and_settings_are_refused() -> None:
    from calibration.slm_fringing import FringingSettings

    with pytest.raises(AmbiguousMeasurement, match="two different even"):
        FringingSettings(periods=(2,))
    with pytest.raises(AmbiguousMeasurement, match="two different even"):
        FringingSettings(periods=(2, 3))
    sigma, fill, _ = fit_fringing(np.array([2, 2, 4, 4]), np.full(4, 0.995))  # a panel that barely modulates
    assert sigma > 1.19  # at the bound: measure_fringing refuses it


def test_records_before_the_measurement_mean_an_ideal_panel(small_bench, tmp_path) -> None:
    from calibration.slm_phase import PhaseSweepSettings

    record = load_record(calibrate_slm(small_bench, tmp_path, settings=PhaseSweepSettings(regions=2, levels=48, region_levels=12, table_regions=4)))
    for key in ("fringing_sigma_px", "fill_factor"):
        del record.params[key]
    table = phase_table_from_record(record)
    assert (table.fringing_sigma_px, table.fill_factor) == (0.0, 1.0)


def test_phase_table_and_layout_refuse_impossible_panels() -> None:
    with pytest.raises(PhaseTableError, match="fringing width"):
        PhaseTable(gray=np.arange(16, dtype=np.uint16), bit_depth=8, fringing_sigma_px=-0.1)
    with pytest.raises(PhaseTableError, match="fill factor"):
        PhaseTable(gray=np.arange(16, dtype=np.uint16), bit_depth=8, fill_factor=1.2)
    numbers = {"wavelength_m": 532e-9, "f1_m": 0.05, "f2_m": 0.05, "fourier_rows": 64, "fourier_cols": 64, "fourier_pitch_m": 8e-6,
               "fourier_bit_depth": 8, "input_rows": 64, "input_cols": 64, "input_pitch_m": 8e-6, "camera_rows": 64,
               "camera_cols": 64, "camera_pitch_m": 8e-6}
    with pytest.raises(LayoutError, match="fill factor"):
        OpticalLayout.tiled(numbers, 8, 2, fill_factor=0.0)
    with pytest.raises(LayoutError, match="fringing width"):
        OpticalLayout.tiled(numbers, 8, 2, fringing_sigma_px=float("nan"))
    layout = OpticalLayout.tiled(numbers, 8, 2, fringing_sigma_px=0.5, fill_factor=0.9)
    assert OpticalLayout.from_dict(layout.to_dict()) == layout
    assert FourFTwin(layout).assumptions == TwinAssumptions(crosstalk_sigma_px=0.5, fill_factor=0.9)
    assert FourFTwin(layout, assumptions=TwinAssumptions()).assumptions == TwinAssumptions()
    old = {k: v for k, v in layout.to_dict().items() if k not in ("fringing_sigma_px", "fill_factor")}
    assert FourFTwin(OpticalLayout.from_dict(old)).assumptions == TwinAssumptions()  # a layout saved before: ideal


def test_exposure_peak_can_be_limited_to_the_pixels_read() -> None:
    off = np.full((32, 32), 10.0)
    on = off.copy()
    on[15:18, 15:18] = 4000.0  # a zero order between the tiles
    on[4:8, 4:8] = 900.0  # a tile
    region = np.zeros((32, 32), dtype=bool)
    region[2:10, 2:10] = True
    assert peak_over(on, off)[0] == 4000.0
    assert peak_over(on, off, region)[0] == pytest.approx(900.0, abs=1)
    with pytest.raises(CalibrationError, match="exposure region"):
        peak_over(on, off, np.zeros((32, 32), dtype=bool))
    edge = np.zeros((32, 32), dtype=bool)
    edge[15, 17] = edge[17, 17] = True  # two read pixels with an unread one between them, where the smoothed light peaks
    peak, _ = peak_over(on, off, edge)
    assert peak == pytest.approx(4000.0)  # the brightest read pixel, not an unread one that reads as dark


def test_the_in_situ_twin_models_fringing_once() -> None:
    from labctl.insitu.twin_fit import RefinableTwin

    numbers = {"wavelength_m": 532e-9, "f1_m": 0.05, "f2_m": 0.05, "fourier_rows": 64, "fourier_cols": 64, "fourier_pitch_m": 8e-6,
               "fourier_bit_depth": 8, "input_rows": 64, "input_cols": 64, "input_pitch_m": 8e-6, "camera_rows": 64,
               "camera_cols": 64, "camera_pitch_m": 8e-6}
    layout = OpticalLayout.tiled(numbers, 8, 2, fringing_sigma_px=0.6, fill_factor=0.9)
    subpixel = RefinableTwin(layout, fringing_px=0.3)
    assert subpixel.assumptions == TwinAssumptions(0.0, 0.9)  # its sub-pixel fringing stands for the blur
    assert RefinableTwin(layout).assumptions == TwinAssumptions(0.6, 0.9)
