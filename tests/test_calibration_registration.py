"""Registration of the input modulator and the Fourier SLM to the camera, against the hidden camera pose."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.errors import EmptyFrames, TooFewSpots
from calibration.records import load_record
from calibration.registration import Registration, RegistrationSettings, _fit
from calibration.run import calibrate_registration
from drivers.bench import BenchSpec
from labctl.optics.geometry import FourFGeometry, input_to_camera_affine
from mock_hw.truth import reveal_truth


def test_registration_recovers_the_camera_pose(small_bench, tmp_path) -> None:
    path = calibrate_registration(small_bench, tmp_path, settings=RegistrationSettings(grid=4, frequencies=3))
    reg = Registration.from_record(load_record(path))
    o, f, i, c = small_bench.spec.optics, small_bench.fourier_slm.grid, small_bench.input_slm.grid, small_bench.camera.grid
    geo = FourFGeometry(o.wavelength_m, o.f1_m, o.f2_m, f.rows, f.cols, f.pitch_m)
    truth = input_to_camera_affine(geo, i.rows, i.cols, i.pitch_m, c.rows, c.cols, c.pitch_m, reveal_truth(small_bench.camera).pose)
    corners = np.array([[0, 0], [i.cols - 1, 0], [0, i.rows - 1], [i.cols - 1, i.rows - 1]], float)
    err = reg.input_points_to_camera(corners) - (corners @ truth[:, :2].T + truth[:, 2])
    assert np.abs(err).max() < 0.4
    assert reg.rms_px < 0.3
    # one cycle per aperture moves the spot one output sample: λ·f2/(N·p_F) = 13 µm ≈ 1.08 camera px
    assert abs(np.hypot(*reg.fourier_to_camera[:, 0]) - 13.3e-6 / 12e-6) < 0.05
    assert path.with_suffix(".png").is_file()


def test_no_light_and_too_few_spots_say_what_to_change(small_bench, tmp_path) -> None:
    small_bench.shutter.block_beam()
    with pytest.raises(EmptyFrames, match="check the laser"):
        calibrate_registration(small_bench, tmp_path)
    assert (tmp_path / "raw" / "registration.npz").is_file()
    pts = np.array([[0, 0], [1, 0], [0, 1]], float)
    with pytest.raises(TooFewSpots, match="found 2 of 3 spots.*centre the beam"):
        _fit(pts, np.array([[0, 0], [1, 0], [np.nan, np.nan]]), "camera: test spots", 3)
