"""Calibration through a faulty bench: the acquirer retries, reconnects and re-shows what the bench
showed, so ``calibrate all`` under injected faults (5 % missed camera triggers, one dropped camera
link, one failed Fourier-SLM write) completes, reports every fault, and matches the fault-free result
within the calibrations' own tolerances (tests/test_calibration_*.py)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from calibration.acquisition import AcquisitionFailed, Acquirer, RetryPolicy
from calibration.records import CalibrationRecord, load_record
from calibration.run import calibrate_all
from drivers.bench import BenchSpec
from drivers.slm import PixelGrid
from labctl.cli import main
from tests.conftest import bench_toml

FAST = RetryPolicy(attempts=5, first_backoff_s=0.0, max_backoff_s=0.0)
#: the disconnect lands in the input-response sweep (measured first), the write failure on the Fourier
#: SLM's 40th pattern (in its phase sweep)
FAULTS = dict(missed_trigger_rate=0.05, disconnect_at_frame=60, write_failure_at=40)


def faulty_toml(missed_trigger_rate: float, disconnect_at_frame: int, write_failure_at: int) -> str:
    text = bench_toml(extra_camera=f"missed_trigger_rate = {missed_trigger_rate}\ndisconnect_at_frames = [{disconnect_at_frame}]")
    return text.replace("pitch_m = 16e-6", f"pitch_m = 16e-6\nwrite_failure_at = [{write_failure_at}]", 1)


def _calibrate(tmp_path: Path, name: str, text: str) -> dict[str, CalibrationRecord]:
    bench_file = tmp_path / f"{name}.toml"
    bench_file.write_text(text)
    paths = calibrate_all(BenchSpec.from_file(bench_file), tmp_path / name, retry=FAST)
    return {kind: load_record(path) for kind, path in paths.items()}


def _corners_px(affine: list, grid: PixelGrid) -> np.ndarray:
    corners = np.array([[0, 0], [grid.cols - 1, 0], [0, grid.rows - 1], [grid.cols - 1, grid.rows - 1]], float)
    a = np.asarray(affine)
    return corners @ a[:, :2].T + a[:, 2]


def test_calibration_under_injected_faults_matches_the_fault_free_one(tmp_path: Path) -> None:
    clean = _calibrate(tmp_path, "clean", bench_toml())
    faulty = _calibrate(tmp_path, "faulty", faulty_toml(**FAULTS))

    # every fault was recovered from and reported: in the records (by kind) and the raw logs (each one)
    assert all(rec.params["acquisition_faults"] == {} for rec in clean.values())
    counts: dict[str, int] = {}
    for kind, rec in faulty.items():
        for fault, n in rec.params["acquisition_faults"].items():
            counts[fault] = counts.get(fault, 0) + n
        lines = np.load(tmp_path / "faulty" / "raw" / f"{kind}.npz")["faults"] if rec.params["acquisition_faults"] else []
        assert len(lines) == sum(rec.params["acquisition_faults"].values())
    assert counts.get("disconnect") == 1 and counts.get("device_error") == 1
    assert counts.get("timeout", 0) >= 20  # 5 % of the calibrations' frames
    assert "reconnect_failed" not in counts
    slm_faults = np.load(tmp_path / "faulty" / "raw" / "slm_phase.npz")["faults"]
    assert any("fourier_slm" in line and "write failed" in line for line in slm_faults)
    input_faults = np.load(tmp_path / "faulty" / "raw" / "input_response.npz")["faults"]
    assert any("disconnect" in line and "camera" in line for line in input_faults)

    # input response: the same relative intensities
    np.testing.assert_allclose(faulty["input_response"].arrays["relative_intensity"],
                               clean["input_response"].arrays["relative_intensity"], atol=0.01)

    # phase table: the same response (the suite's own bound against the truth is 0.08 rad RMS)
    a, b = clean["slm_phase"].arrays, faulty["slm_phase"].arrays
    gap = np.angle(np.exp(1j * (a["phase_global"] - b["phase_global"])))
    assert np.sqrt(np.mean(gap**2)) < 0.05
    assert np.sqrt(np.mean(np.angle(np.exp(1j * (a["phase_regions"] - b["phase_regions"]))) ** 2)) < 0.08

    # camera: gain within 5 %, read noise within 15 %, dark level within 1 DN, the same hot pixels
    pa, pb = clean["camera"].params, faulty["camera"].params
    assert abs(pb["gain_dn_per_e"] / pa["gain_dn_per_e"] - 1) < 0.05
    assert abs(pb["read_noise_e"] / pa["read_noise_e"] - 1) < 0.15
    assert abs(pb["dark_offset_dn"] - pa["dark_offset_dn"]) < 1.0
    np.testing.assert_array_equal(clean["camera"].arrays["hot_pixels"], faulty["camera"].arrays["hot_pixels"])

    # registration: the modulator's corners land within 0.4 camera px, the Fourier map within 0.1 px per cycle
    ra, rb = clean["registration"].params, faulty["registration"].params
    grid = PixelGrid(100, 100, 15e-6)
    assert np.abs(_corners_px(ra["input_to_camera"], grid) - _corners_px(rb["input_to_camera"], grid)).max() < 0.4
    fa, fb = np.asarray(ra["fourier_to_camera"]), np.asarray(rb["fourier_to_camera"])
    assert np.abs(fa[:, :2] - fb[:, :2]).max() < 0.1 and np.abs(fa[:, 2] - fb[:, 2]).max() < 0.4
    assert faulty["registration"].residuals["rms_px"] < 0.3


def test_a_reconnected_camera_keeps_its_settings_and_the_slms_show_their_patterns_again(monkeypatch) -> None:
    events: list[tuple[str, str]] = []
    with BenchSpec.from_toml(faulty_toml(0.0, 3, 0)).open() as bench:
        acq = Acquirer(bench, policy=FAST, on_fault=lambda kind, message, index: events.append((kind, message)))
        cam = bench.camera
        connect = cam._connect

        def factory_settings() -> None:  # as a vendor camera does when it comes back after a cable pull
            connect()
            cam._exposure_s, cam._gain = 1e-3, 1.0

        monkeypatch.setattr(cam, "_connect", factory_settings)
        cam.exposure_s, cam.gain = 2e-3, 1.5
        mask = np.full(bench.fourier_slm.grid.shape, 7, np.uint16)
        image = np.zeros(bench.input_slm.grid.shape)
        image[40:60, 40:60] = 1.0
        acq.set_mask(mask)
        acq.set_input(image)
        frames = acq.frames(6)
        assert frames.shape == (6, *cam.grid.shape)
        assert [kind for kind, _ in events] == ["device_error", "disconnect"]  # first mask write, fourth trigger
        assert cam.exposure_s == 2e-3 and cam.gain == 1.5
        np.testing.assert_array_equal(bench.fourier_slm.shown_gray, mask)
        np.testing.assert_array_equal(bench.input_slm.shown_gray, np.rint(image * (bench.input_slm.levels - 1)))
        # the frames after the reconnect show the same light as before it
        means = frames.mean(axis=(1, 2))
        assert np.ptp(means) < 0.05 * means.mean()
        assert acq.faults == 2


def test_dark_frames_without_a_shutter_show_the_input_again_afterwards() -> None:
    text = bench_toml().split("[shutter]")[0]
    with BenchSpec.from_toml(text).open() as bench:
        acq = Acquirer(bench, np.zeros(bench.fourier_slm.grid.shape, np.uint16), FAST)
        acq.set_input(np.ones(bench.input_slm.grid.shape))
        lit = acq.frames(1)[0].mean()
        dark = acq.dark_frames(2).mean()
        assert dark < 0.5 * lit
        assert acq.frames(1)[0].mean() == pytest.approx(lit, rel=0.05)


def test_a_camera_that_never_answers_stops_the_calibration_naming_it(tmp_path: Path) -> None:
    bench_file = tmp_path / "dead.toml"
    bench_file.write_text(bench_toml(extra_camera="missed_trigger_rate = 0.99"))
    with pytest.raises(AcquisitionFailed, match=r"^camera: .*failed 5 times in a row; last error: camera: asked for 1"):
        calibrate_all(BenchSpec.from_file(bench_file), tmp_path / "out", kinds=("camera",), retry=FAST)
    faults = np.load(tmp_path / "out" / "raw" / "camera.npz")["faults"]
    assert len(faults) == 5 and all(line.startswith("timeout: dark frame (1 of 4)") for line in faults)


def test_calibrate_prints_the_faults_it_recovered_from(tmp_path: Path) -> None:
    bench_file = tmp_path / "faulty.toml"
    bench_file.write_text(faulty_toml(0.05, 50, 0))
    result = CliRunner().invoke(main, ["calibrate", "camera", "--bench", str(bench_file), "--out", str(tmp_path / "cal")])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # the console wraps long lines
    assert re.search(r"recovered from \d+ acquisition faults \(1 device_error, 1 disconnect, \d+ timeout\); listed in", text)
    assert "raw/camera.npz" in "".join(result.output.split())
