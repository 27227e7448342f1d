"""Calibrations on the lab-realism bench (mock_hw/lab_bench.toml), checked against its hidden truth:
the benchmark writes the bench's realism tables, the multiplexed SLM phase calibration is fast and
accurate there, the registration fits the relay's distortion where an affine cannot, and records
made before the distortion model still load."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from calibration.records import CalibrationRecord, load_record
from calibration.registration import RadialWarp, Registration, RegistrationSettings
from calibration.run import calibrate_registration, calibrate_slm
from calibration.spots import apply_affine, fit_affine
from drivers.device import DeviceInfo
from labctl.optics.readout import channel_points
from mock_hw.truth import reveal_truth

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import calibration_accuracy as accuracy  # noqa: E402

LAB = tomllib.loads((ROOT / "mock_hw" / "lab_bench.toml").read_text())


@pytest.fixture
def lab_bench():
    with accuracy.bench_for_seed(LAB, 2).open() as bench:
        yield bench


def test_benchmark_writes_the_lab_bench_with_its_realism_tables() -> None:
    text = accuracy._toml({k: v for k, v in LAB.items()})
    assert "[camera.realism]" in text and tomllib.loads(text) == LAB
    with accuracy.bench_for_seed(LAB, 1).open() as bench:
        cam = reveal_truth(bench.camera).realism
        assert cam.distortion is not None and cam.aberration is not None
        assert reveal_truth(bench.fourier_slm).realism.flicker is not None
        assert reveal_truth(bench.input_slm).realism.modulator is not None


def test_multiplexed_slm_calibration_is_fast_and_accurate_on_the_lab_bench(lab_bench, tmp_path, one_torch_thread) -> None:
    path = calibrate_slm(lab_bench, tmp_path)  # 9 s on 2 cores when they are not shared; not asserted here
    record = load_record(path)
    assert record.params["multiplexed_regions"] and record.params["regions_measured"] == 4
    assert accuracy.phase_error(lab_bench, path) <= 0.05  # measured 0.024 rad (seed 2)


def test_registration_fits_the_distortion_an_affine_cannot(lab_bench, tmp_path, one_torch_thread) -> None:
    path = calibrate_registration(lab_bench, tmp_path, settings=RegistrationSettings(grid=5, frequencies=4))
    record = load_record(path)
    fit = Registration.from_record(record)
    assert fit.distortion is not None and record.params["model"].startswith("affine + radial")
    true_k1 = reveal_truth(lab_bench.camera).realism.distortion.k1
    assert fit.distortion.k1 == pytest.approx(true_k1, rel=0.35)  # same normalising radius up to the pose's scale
    # the same spots fitted by affines alone
    a = record.arrays
    ok_in, ok_f = a["input_spot_used"].astype(bool), a["fourier_spot_used"].astype(bool)
    affine_only = Registration(fit_affine(a["input_spot_pixels"][ok_in], a["input_spot_camera"][ok_in])[0],
                               fit_affine(a["fourier_k"][ok_f], a["fourier_spot_camera"][ok_f])[0], 0.0)
    k = a["fourier_k"]
    warped, affine = accuracy.map_error(lab_bench, fit, k), accuracy.map_error(lab_bench, affine_only, k)
    assert warped <= 0.25 and warped < 0.8 * affine, (warped, affine)
    assert record.residuals["rms_px"] < 0.5 * record.residuals["affine_only_rms_px"]


def test_affine_only_records_still_load_and_map_as_before(tmp_path) -> None:
    affine = np.array([[-1.02, 0.01, 221.0], [-0.01, -1.01, 219.0]])
    old = CalibrationRecord(
        kind="registration", device=DeviceInfo("mock", "labctl", "MockCamera", "SIM-camera-3"), wavelength_m=532e-9,
        method="least-squares affine",
        params={"input_to_camera": affine.tolist(), "fourier_to_camera": [[1.0, 0, 120], [0, 1.0, 120]]},
        residuals={"rms_px": 0.1}, arrays={},
    )
    reg = Registration.from_record(load_record(old.save(tmp_path)))
    pts = np.array([[0.0, 0.0], [100.0, 50.0]])
    assert reg.distortion is None
    np.testing.assert_allclose(reg.input_points_to_camera(pts), apply_affine(affine, pts))


def test_readout_points_follow_the_distortion() -> None:
    from drivers.bench import BenchSpec
    from labctl.models.bench_layout import layout_for_bench

    layout = layout_for_bench(BenchSpec.default(), 28, 4)
    affine = np.array([[-1.0, 0.0, 220.0], [0.0, -1.0, 220.0]])
    warp = RadialWarp((120.0, 120.0), -0.015, 0.004, 170.0)
    plain = channel_points(layout, affine).numpy()
    bent = channel_points(layout, affine, warp=warp).numpy()
    np.testing.assert_allclose(bent, warp(plain.astype(np.float64)), atol=1e-3)
    assert np.abs(bent - plain).max() > 0.1
    np.testing.assert_array_equal(channel_points(layout, affine, warp=None).numpy(), plain)


def test_input_response_of_an_lc_modulator_follows_its_hidden_cos2(tmp_path, one_torch_thread) -> None:
    from calibration.input_response import InputResponseSettings
    from calibration.records import KINDS, ROLE_OF_KIND
    from calibration.run import calibrate_input

    assert ROLE_OF_KIND["input_response"] == "input_slm" and "input_response" in KINDS
    raw = {k: dict(v) for k, v in LAB.items()}
    raw["input_slm"] = {**raw["input_slm"], "realism": {"modulator": "lc", "power_drift": 0.03, "power_drift_time_s": 900.0}}
    with accuracy.bench_for_seed(raw, 1).open() as bench:
        path = calibrate_input(bench, tmp_path, settings=InputResponseSettings(levels=17, frames_each=1))
        lc = reveal_truth(bench.input_slm).realism.modulator
    record = load_record(path)
    assert record.kind == "input_response" and record.params["model"].startswith("cos²")
    gray = record.arrays["gray"]
    true = np.abs(lc.field(gray, 256)) ** 2
    np.testing.assert_allclose(record.arrays["relative_intensity"], true / true[-1], atol=0.01)
    amplitude = record.arrays["amplitude"]
    table = record.arrays["table_gray"]
    assert np.abs(amplitude[table] - np.linspace(0, 1, len(table))).max() < 0.05 + amplitude[0]
