"""Camera response (EMVA 1288) on the small simulated bench, and the frame correction built from it."""

from __future__ import annotations

import numpy as np
import torch

from calibration.camera_response import CameraCorrection, CameraSweepSettings
from calibration.records import load_record
from calibration.run import calibrate_camera
from mock_hw.truth import reveal_truth


def test_camera_response_matches_the_hidden_sensor_and_corrects_frames(small_bench, tmp_path) -> None:
    path = calibrate_camera(small_bench, tmp_path, settings=CameraSweepSettings(exposures=14, flat_frames=4))
    rec = load_record(path, device=small_bench.camera.info, wavelength_m=532e-9)
    sensor = reveal_truth(small_bench.camera).sensor
    p = rec.params
    assert abs(p["gain_dn_per_e"] / sensor.gain_dn_per_e - 1) < 0.05
    assert abs(p["read_noise_e"] / sensor.read_noise_e - 1) < 0.15
    assert abs(p["dark_offset_dn"] - sensor.dark_offset_dn) < 1.0
    assert 0.7 * 4095 < p["saturation_dn"] <= 4095
    assert rec.residuals["linearity_error"] < 0.02
    np.testing.assert_array_equal(rec.arrays["hot_pixels"], sensor.hot_pixels)
    assert path.with_suffix(".png").is_file() and (tmp_path / "raw" / "camera.npz").is_file()

    corr = CameraCorrection.from_record(rec)
    small_bench.camera.exposure_s = p["flat_exposure_s"]
    small_bench.shutter.block_beam()
    dark = np.stack([small_bench.camera.capture().data for _ in range(2)])
    out = corr.apply(dark)
    assert out.dtype == np.float32 and out.shape == dark.shape
    assert abs(float(np.median(out))) < 2.0
    assert np.abs(out[:, sensor.hot_pixels]).max() < 20  # hot pixels replaced by their neighbours
    as_torch = corr.apply(torch.from_numpy(dark.astype(np.int32)))
    assert isinstance(as_torch, torch.Tensor)
    np.testing.assert_allclose(as_torch.numpy(), out)
