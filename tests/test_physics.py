"""The simulated bench against the 4f model: imaging through a flat mask, steering, camera pose.
(The model itself against independent references: tests/test_optics_reference.py.)"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from drivers.bench import BenchSpec
from labctl.optics.geometry import CameraPose, FourFGeometry, input_to_camera_affine
from mock_hw.slm import optical_table
from mock_hw.truth import reveal_truth
from tests.conftest import bench_toml

GEO = FourFGeometry(wavelength_m=532e-9, f1_m=0.05, f2_m=0.05, rows=128, cols=128, fourier_pitch_m=16e-6)


def _blobs(rows: int, cols: int) -> np.ndarray:
    yy, xx = np.mgrid[:rows, :cols]
    img = np.zeros((rows, cols))
    for cy, cx, s in [(0.3, 0.3, 6), (0.65, 0.4, 9), (0.45, 0.75, 5)]:
        img += np.exp(-((yy - cy * rows) ** 2 + (xx - cx * cols) ** 2) / (2 * s**2))
    return img / img.max()


def test_flat_mask_images_the_input_onto_the_camera_up_to_the_known_affine() -> None:
    """Ideal modulators and no noise, but the camera keeps its hidden misalignment."""
    text = bench_toml(ideal=True, noise=False).replace("ideal = true\nnoise", "ideal = false\nnoise")
    with BenchSpec.from_toml(text).open() as bench:
        inp, cam = bench.input_slm, bench.camera
        image = _blobs(*inp.grid.shape)
        inp.write_amplitude(image)
        bench.fourier_slm.write_phase(np.zeros(bench.fourier_slm.grid.shape))
        cam.exposure_s = 2e-4
        frame = cam.capture().data.astype(float)
        pose = reveal_truth(cam).pose
        assert pose.rotation_rad != 0 and pose.shift_x_m != 0  # the misalignment is really there
        offset = reveal_truth(cam).sensor.dark_offset_dn
        geo = optical_table(bench.context).geometry
        sizes = (*inp.grid.shape, inp.grid.pitch_m, *cam.grid.shape, cam.grid.pitch_m)
        affine = input_to_camera_affine(geo, *sizes, pose)
        nominal = input_to_camera_affine(geo, *sizes, CameraPose())
    # Expected camera image: input *intensity* warped by the affine (linear interpolation).
    expected = cv2.warpAffine(image**2, affine, (cam.grid.cols, cam.grid.rows), flags=cv2.INTER_LINEAR)
    signal = frame - offset
    assert signal.max() < 4000  # not saturated
    corr = np.corrcoef(signal.ravel(), expected.ravel())[0, 1]
    assert corr > 0.99
    # Assuming perfect alignment matches clearly worse: the test can tell.
    naive = cv2.warpAffine(image**2, nominal, (cam.grid.cols, cam.grid.rows), flags=cv2.INTER_LINEAR)
    assert np.corrcoef(signal.ravel(), naive.ravel())[0, 1] < corr - 0.05


def test_phase_ramp_on_the_fourier_slm_moves_the_spot_on_the_camera(ideal_bench) -> None:
    inp, fslm, cam = ideal_bench.input_slm, ideal_bench.fourier_slm, ideal_bench.camera
    spot = np.zeros(inp.grid.shape)
    spot[48:52, 48:52] = 1
    inp.write_amplitude(spot)
    geo = optical_table(ideal_bench.context).geometry
    y, x = geo.fourier_coords_m()
    cam.exposure_s = 5e-3

    def spot_position() -> np.ndarray:
        f = cam.capture().data.astype(float)
        w = np.clip(f - np.percentile(f, 50), 0, None)
        rows, cols = np.mgrid[: f.shape[0], : f.shape[1]]
        return np.array([(w * rows).sum(), (w * cols).sum()]) / w.sum()

    fslm.write_phase(np.zeros(fslm.grid.shape))
    p0 = spot_position()
    kx = 6 / (geo.cols * geo.fourier_pitch_m)
    fslm.write_phase(np.broadcast_to(2 * np.pi * kx * x, fslm.grid.shape))
    p1 = spot_position()
    expected_px = geo.wavelength_m * geo.f2_m * kx / cam.grid.pitch_m
    assert p1[1] - p0[1] == pytest.approx(expected_px, abs=0.3)
    assert abs(p1[0] - p0[0]) < 0.3


@pytest.mark.parametrize("pose", [CameraPose(35e-6, -20e-6, 0.01, 1.02), CameraPose(-5e-6, 60e-6, -0.03, 0.97)])
def test_camera_pose_is_recovered_from_its_registration_affine(pose: CameraPose) -> None:
    from labctl.optics.geometry import pose_from_affine

    sizes = (200, 200, 15e-6, 240, 240, 13e-6)
    affine = input_to_camera_affine(GEO, *sizes, pose)
    back = pose_from_affine(GEO, *sizes, affine)
    assert back.shift_x_m == pytest.approx(pose.shift_x_m, abs=1e-9)
    assert back.shift_y_m == pytest.approx(pose.shift_y_m, abs=1e-9)
    assert back.rotation_rad == pytest.approx(pose.rotation_rad, abs=1e-9)
    assert back.scale == pytest.approx(pose.scale, rel=1e-9)
