"""The lab-realism simulator (mock_hw/realism): each effect changes frames the way its physics says,
the lab bench opens and checks, bad realism options are refused naming table and key, and the
embedded default bench has none of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from drivers.bench import Bench, BenchSpec
from drivers.errors import BenchFileError
from labctl.cli import main
from mock_hw.realism.aberrations import noll_to_nm, zernike
from mock_hw.realism.fringing import SubpixelFringing
from mock_hw.realism.input_modulator import DMDModulation
from mock_hw.realism.nonlinearity import SoftSaturation
from mock_hw.realism.render import LabRealism
from mock_hw.slm import optical_table
from mock_hw.truth import PhaseResponseTruth, reveal_truth
from labctl.optics.propagation import fringing_blur

LAB_BENCH = Path(__file__).resolve().parents[1] / "mock_hw" / "lab_bench.toml"
#: a random binary input: its spectrum fills the Fourier SLM (a uniform one lights its centre only)
SPREAD = np.random.default_rng(7).integers(0, 2, (100, 100)).astype(np.uint16) * 255


def lab_toml(
    *, input_realism: str | None = None, fourier_realism: str | None = None, camera_realism: str | None = None,
    ideal: bool = True, noise: bool = False, camera_extra: str = "",
) -> str:
    """A small bench (128-pixel Fourier SLM) with the given ``[role.realism]`` bodies."""
    flag = "true" if ideal else "false"

    def realism(role: str, body: str | None) -> str:
        return "" if body is None else f"\n[{role}.realism]\n{body}\n"

    return f"""
[optics]
wavelength_m = 532e-9
f1_m = 0.05
f2_m = 0.05

[input_slm]
driver = "mock"
seed = 1
rows = 100
cols = 100
pitch_m = 15e-6
ideal = {flag}
{realism("input_slm", input_realism)}
[fourier_slm]
driver = "mock"
seed = 2
rows = 128
cols = 128
pitch_m = 16e-6
ideal = {flag}
{realism("fourier_slm", fourier_realism)}
[camera]
driver = "mock"
seed = 3
rows = 120
cols = 120
pitch_m = 12e-6
ideal = {flag}
noise = {"true" if noise else "false"}
{camera_extra}
{realism("camera", camera_realism)}
[shutter]
driver = "mock"
"""


def open_bench(**kwargs: object) -> Bench:
    return BenchSpec.from_toml(lab_toml(**kwargs)).open()  # type: ignore[arg-type]


def frame(bench: Bench, input_gray: np.ndarray | None = None, fourier_gray: np.ndarray | None = None, exposure_s: float = 2e-4) -> np.ndarray:
    """One dark-subtracted frame (float) of the given patterns (full-on input and flat phase by default)."""
    inp, fou, cam = bench.input_slm, bench.fourier_slm, bench.camera
    inp.write_gray(np.full(inp.grid.shape, inp.levels - 1, dtype=np.uint16) if input_gray is None else input_gray)
    fou.write_gray(np.zeros(fou.grid.shape, dtype=np.uint16) if fourier_gray is None else fourier_gray)
    cam.exposure_s = exposure_s
    return cam.capture().data.astype(float) - reveal_truth(cam).sensor.dark_offset_dn


def power(bench: Bench, input_gray: np.ndarray, fourier_gray: np.ndarray) -> torch.Tensor:
    """Optical power on the camera (W), noiseless, straight from the simulated table."""
    return optical_table(bench.context).camera_power(input_gray[None], fourier_gray, True)[0]


def centroid(image: np.ndarray) -> np.ndarray:
    """(x, y) centroid in pixels."""
    w = np.clip(image, 0, None)
    rows, cols = np.indices(image.shape)
    return np.array([(w * cols).sum(), (w * rows).sum()]) / w.sum()


# -- the benches ------------------------------------------------------------------------------------------
def test_the_default_bench_has_no_realism_and_the_lab_bench_hides_every_effect() -> None:
    with BenchSpec.default().open() as bench:
        assert all(reveal_truth(d).realism is None for d in (bench.input_slm, bench.fourier_slm, bench.camera))
        assert LabRealism.of(optical_table(bench.context)) is None
    with BenchSpec.from_file(LAB_BENCH).open() as bench:
        inp, fou, cam = (reveal_truth(d).realism for d in (bench.input_slm, bench.fourier_slm, bench.camera))
        assert inp.modulator is not None and inp.power_drift is not None and inp.pointing_drift is not None
        assert None not in (fou.surface, fou.fringing, fou.flicker, fou.phase_drift)
        assert None not in (cam.aberration, cam.vignetting, cam.distortion, cam.nonlinearity, cam.stray_light)
        assert not hasattr(bench.camera, "realism")  # hidden: only reveal_truth hands it out


def test_an_empty_realism_table_renders_the_plain_bench() -> None:
    """The realism light path with every effect off is the table's own physics."""
    rng = np.random.default_rng(0)
    inputs = rng.integers(0, 256, (100, 100)).astype(np.uint16)
    mask = rng.integers(0, 256, (128, 128)).astype(np.uint16)
    with open_bench(ideal=False) as plain:
        expected = power(plain, inputs, mask)
    with open_bench(ideal=False, input_realism="", fourier_realism="", camera_realism="") as lab:
        assert LabRealism.of(optical_table(lab.context)) is not None
        got = power(lab, inputs, mask)
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-6 * float(expected.max()))


def test_the_same_seeds_give_the_same_frames() -> None:
    body = "flicker_rms_rad = 0.3\nphase_drift = 0.1\nphase_drift_time_s = 10.0"
    mask = np.random.default_rng(1).integers(0, 256, (128, 128)).astype(np.uint16)
    runs = []
    for _ in range(2):
        with open_bench(fourier_realism=body) as bench:
            runs.append([frame(bench, fourier_gray=mask) for _ in range(3)])
    np.testing.assert_array_equal(np.array(runs[0]), np.array(runs[1]))


def test_bench_check_runs_on_the_lab_bench(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["bench", "check", "--bench", str(LAB_BENCH), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "bench check passed" in result.output
    assert np.load(tmp_path / "out" / "frame.npy").shape == (240, 240)


# -- the imaging path ---------------------------------------------------------------------------------------
def test_distortion_moves_an_off_axis_spot_by_the_radial_model() -> None:
    inputs = np.zeros((100, 100), dtype=np.uint16)
    inputs[5:8, 8:11] = 255  # off axis: lands near a corner of the (inverted) image
    spots = []
    for body in (None, "distortion_k1 = -0.1\ndistortion_k2 = 0.02"):
        with open_bench(camera_realism=body) as bench:
            spots.append(frame(bench, inputs, exposure_s=4e-4))
            cam = bench.camera
            distortion = reveal_truth(cam).realism.distortion if body else None
    pitch = 12e-6
    window = (slice(85, 120), slice(75, 120))
    before = centroid(spots[0][window]) + [window[1].start, window[0].start]
    after = centroid(spots[1][window]) + [window[1].start, window[0].start]
    x_m, y_m = (before - 59.5) * pitch  # the ideal camera sits centred on the axis
    px, py = distortion.distort_m(np.array(x_m), np.array(y_m))
    predicted = np.array([px, py]) / pitch + 59.5
    assert np.linalg.norm(predicted - before) > 2.0  # a visible move ...
    np.testing.assert_allclose(after, predicted, atol=0.15)  # ... where the radial model puts it


def test_vignetting_dims_the_corners_as_the_overlap_model_says() -> None:
    with open_bench() as bench:
        flat = frame(bench, exposure_s=1e-4)
    with open_bench(camera_realism="vignetting = 0.3") as bench:
        dim = frame(bench, exposure_s=1e-4)
        vignetting = reveal_truth(bench.camera).realism.vignetting
    rows, cols = np.indices(flat.shape)
    expected = vignetting.relative_illumination((cols - 59.5) * 12e-6, (rows - 59.5) * 12e-6)
    inner = (slice(15, -15), slice(15, -15))  # away from the image's edge
    np.testing.assert_allclose((dim / flat)[inner], expected[inner], atol=0.02)
    assert expected.min() < 0.8  # the corners lose 24-30 %


def test_aberrations_lower_the_peak_of_a_point_image_but_keep_its_power() -> None:
    """Spherical aberration (symmetric: the image does not move) of 0.7-1 rad RMS: a Strehl ratio near
    exp(−σ²) (0.37-0.61 for a uniform pupil; this pupil is apodised by the pixel's spectrum)."""
    inputs = np.zeros((100, 100), dtype=np.uint16)
    inputs[50, 50] = 255
    mask = np.zeros((128, 128), dtype=np.uint16)
    with open_bench() as bench:
        sharp = power(bench, inputs, mask)
    with open_bench(camera_realism="zernike_noll = [11]\nzernike_rms_rad = 1.0") as bench:
        spherical = power(bench, inputs, mask)
        assert 0.7 <= reveal_truth(bench.camera).realism.aberration.rms_rad <= 1.0
    with open_bench(camera_realism="zernike_noll = [5, 7]\nzernike_rms_rad = 1.0") as bench:
        astigmatic = power(bench, inputs, mask)
    assert 0.3 < float(spherical.max()) / float(sharp.max()) < 0.7
    for image in (spherical, astigmatic):
        assert float(image.sum()) == pytest.approx(float(sharp.sum()), rel=0.01)  # a phase: power kept
        assert float((image - sharp).abs().sum()) > 0.2 * float(sharp.sum())


def test_zernike_terms_are_orthonormal_over_the_pupil() -> None:
    assert [noll_to_nm(j) for j in (1, 2, 3, 4, 5, 6, 7, 8, 11)] == [
        (0, 0), (1, 1), (1, -1), (2, 0), (2, -2), (2, 2), (3, -1), (3, 1), (4, 0)
    ]
    y, x = np.mgrid[-1:1:801j, -1:1:801j]
    rho, theta = np.hypot(x, y), np.arctan2(y, x)
    inside = rho <= 1
    z = np.array([zernike(j, rho, theta)[inside] for j in (5, 6, 7, 8, 11)])
    np.testing.assert_allclose(z @ z.T / inside.sum(), np.eye(5), atol=0.01)


def test_stray_light_adds_a_fixed_share_of_the_input_power() -> None:
    inputs = np.full((100, 100), 255, dtype=np.uint16)
    mask = np.zeros((128, 128), dtype=np.uint16)
    with open_bench() as bench:
        clean = power(bench, inputs, mask)
    with open_bench(camera_realism="stray_light = 0.05") as bench:
        table = optical_table(bench.context)
        lit = power(bench, inputs, mask)
        stray = reveal_truth(bench.camera).realism.stray_light
        input_w = table.input_power_w(inputs)
        dark = table.camera_power(inputs[None], mask, False)  # the shutter closed: no stray light either
    glow = (lit - clean).numpy()
    assert glow.sum() == pytest.approx(stray.fraction * input_w, rel=1e-3)
    assert glow.min() > 0 and float(dark.abs().max()) == 0
    assert np.abs(np.diff(glow, axis=1)).max() < 0.02 * glow.max()  # smooth


def test_nonlinearity_compresses_near_the_full_well() -> None:
    ramp = np.tile(np.linspace(0, 255, 100).round().astype(np.uint16), (100, 1))  # intensity ∝ gray²: a wide range
    with open_bench() as bench:
        sensor = reveal_truth(bench.camera).sensor
        top_e = min(0.74 * sensor.full_well_e, 0.97 * 4095 / sensor.gain_dn_per_e)  # below the ADC's clipping
        exposure = 2e-4 * top_e * sensor.gain_dn_per_e / np.percentile(frame(bench, exposure_s=2e-4), 99)
        linear = frame(bench, ramp, exposure_s=exposure)
    with open_bench(camera_realism="nonlinearity = 0.15") as bench:
        bent = frame(bench, ramp, exposure_s=exposure)
        knee = reveal_truth(bench.camera).realism.nonlinearity
    electrons = linear / sensor.gain_dn_per_e
    expected = knee(torch.from_numpy(electrons)).numpy() * sensor.gain_dn_per_e
    bright = electrons > knee.knee_e + 200
    dim = (electrons < knee.knee_e) & (electrons > 50)
    assert bright.sum() > 100 and dim.sum() > 100
    np.testing.assert_allclose(bent[bright], expected[bright], atol=1.01)  # compressed as modelled ...
    np.testing.assert_allclose(bent[dim], linear[dim], atol=1.01)  # ... linear below the knee
    assert (linear - bent)[bright].max() > 20  # tens of DN low towards the full well
    compress = SoftSaturation(knee_e=8000.0, full_well_e=10000.0)
    assert float(compress(torch.tensor(10000.0))) == pytest.approx(10000 * (1 - compress.loss_at_full_well))


# -- the Fourier SLM ----------------------------------------------------------------------------------------
def test_surface_bow_adds_its_phase_whatever_the_gray_levels() -> None:
    """A random input (its spectrum fills the panel) through a random mask: the bow blurs the image."""
    inputs = np.random.default_rng(2).integers(0, 2, (100, 100)).astype(np.uint16) * 255
    mask = np.random.default_rng(2).integers(0, 256, (128, 128)).astype(np.uint16)
    with open_bench() as bench:
        flat = power(bench, inputs, mask)
    with open_bench(fourier_realism="surface_bow_m = 1e-7") as bench:
        bowed = power(bench, inputs, mask)
        bow = reveal_truth(bench.fourier_slm).realism.surface
    height = bow.height_m(128, 128)
    assert 0.7e-7 <= np.abs(height).max() <= 1.0e-7 * 1.001
    assert float((bowed - flat).abs().sum()) > 0.05 * float(flat.sum())
    assert float(bowed.sum()) == pytest.approx(float(flat.sum()), rel=0.05)  # a phase: the light is moved, not lost


def test_subpixel_fringing_acts_on_voltages_and_loses_light_at_edges() -> None:
    response = PhaseResponseTruth(8, 2 * np.pi * 1.1, 1.6, 0.0, 0.0, 0.0, 0.0)  # strongly nonlinear curve
    fringing = SubpixelFringing(width_m=4e-6)
    uniform = np.full((16, 16), 128, dtype=np.uint16)
    t, lc = fringing.pixels(uniform, response, 8e-6)
    np.testing.assert_allclose(np.abs(t), 1, atol=1e-12)
    np.testing.assert_allclose(lc, response.curve(uniform), atol=1e-12)
    stripes = np.zeros((16, 16), dtype=np.uint16)
    stripes[:, ::2] = 255
    t, lc = fringing.pixels(stripes, response, 8e-6)
    assert np.abs(t).mean() < 0.97  # light diffracted out of each pixel's mean at the edges
    blurred_phase = fringing_blur(torch.from_numpy(response.phase(stripes)), 4e-6 / 8e-6).numpy()  # the same width, on phase
    assert np.abs(lc - blurred_phase)[:, 2:-2].mean() > 0.1  # the response after the blur ≠ the twin's blurred phase


def test_flicker_varies_frame_to_frame_but_averages_out() -> None:
    mask = np.random.default_rng(3).integers(0, 256, (128, 128)).astype(np.uint16)
    with open_bench() as bench:
        steady = frame(bench, SPREAD, mask)
    with open_bench(fourier_realism="flicker_rms_rad = 0.2") as bench:
        frames = np.array([frame(bench, SPREAD, mask) for _ in range(16)])
    deviation = np.abs(frames - steady).mean(axis=(1, 2))
    assert deviation.min() > 0 and np.std(deviation) > 0  # every frame its own flicker
    assert np.abs(frames.mean(axis=0) - steady).mean() < 0.4 * deviation.mean()


def test_phase_drift_grows_with_time() -> None:
    mask = np.random.default_rng(4).integers(0, 256, (128, 128)).astype(np.uint16)
    with open_bench(fourier_realism="phase_drift = 0.2\nphase_drift_time_s = 100.0") as bench:
        clock = optical_table(bench.context).clock
        start = frame(bench, SPREAD, mask)
        changes = []
        for t in (10.0, 50.0, 300.0):
            clock.wait_until(t)
            changes.append(np.abs(frame(bench, SPREAD, mask) - start).mean())
        assert reveal_truth(bench.fourier_slm).realism.phase_drift.amplitude < 0  # the panel warms: less retardance
    assert 0 < changes[0] < changes[1] < changes[2]


# -- the laser and the input modulator --------------------------------------------------------------------
def test_laser_power_drift_follows_the_clock_and_the_power_meter_sees_it() -> None:
    with open_bench(input_realism="power_drift = 0.2\npower_drift_time_s = 100.0") as bench:
        table = optical_table(bench.context)
        cam = bench.camera
        first = frame(bench)
        t0 = cam.capture().timestamp_s  # the same light, a moment later (the drift is slow)
        metered_0 = table.input_power_w(bench.input_slm.shown_gray)
        table.clock.wait_until(200.0)
        later = frame(bench)
        t1 = cam.capture().timestamp_s
        metered_1 = table.input_power_w(bench.input_slm.shown_gray)
        drift = reveal_truth(bench.input_slm).realism.power_drift
    mid = 2e-4 / 2
    expected = (1 + drift.at(t1 + mid)) / (1 + drift.at(t0 + mid))
    assert abs(expected - 1) > 0.1
    assert later.sum() / first.sum() == pytest.approx(expected, rel=2e-3)
    assert metered_1 / metered_0 == pytest.approx((1 + drift.at(table.clock.now())) / (1 + drift.at(t0 + 2 * mid)), rel=2e-3)


def test_beam_pointing_drift_moves_the_light_against_the_drift() -> None:
    """A Gaussian beam (non-ideal input) drifting across the modulator: its inverted image moves the other way."""
    with open_bench(ideal=False, input_realism="pointing_drift_m = 1e-3\npointing_drift_time_s = 100.0") as bench:
        clock = optical_table(bench.context).clock
        centres = [centroid(frame(bench))]
        for t in (30.0, 300.0):
            clock.wait_until(t)
            centres.append(centroid(frame(bench)))
        dy, dx = (d.amplitude for d in reveal_truth(bench.input_slm).realism.pointing_drift)
    moves = [c - centres[0] for c in centres[1:]]
    direction = np.array([dx, dy]) / np.hypot(dx, dy)
    assert np.dot(moves[0], direction) < 0 and np.dot(moves[1], direction) < np.dot(moves[0], direction)
    assert np.linalg.norm(moves[1]) > 0.5  # pixels


def test_dmd_gray_is_the_time_average_of_binary_frames() -> None:
    period = 2e-5
    with open_bench(input_realism=f'modulator = "dmd"\npwm_period_s = {period}') as bench:
        dmd = reveal_truth(bench.input_slm).realism.modulator
        full = frame(bench, exposure_s=10 * period)
        inner = (slice(30, 90), slice(30, 90))
        for gray in (64, 128, 200):
            got = frame(bench, np.full((100, 100), gray, dtype=np.uint16), exposure_s=10 * period)
            # whole PWM periods: intensity linear in gray (an amplitude modulator's is quadratic)
            assert got[inner].mean() / full[inner].mean() == pytest.approx(gray / 255, abs=0.004)
        for gray in (100, 190):  # 12.5 periods: the partial period shows a gray error
            pattern = np.full((100, 100), gray, dtype=np.uint16)
            bench.input_slm.write_gray(pattern)
            bench.camera.exposure_s = 12.5 * period
            shot = bench.camera.capture()
            weights = dmd.plane_weights(np.array([shot.timestamp_s]), 12.5 * period)[0]
            expected = sum(w for b, w in enumerate(weights) if gray >> b & 1)
            got = (shot.data.astype(float) - reveal_truth(bench.camera).sensor.dark_offset_dn)[inner].mean() / (1.25 * full[inner].mean())
            assert got == pytest.approx(expected, abs=0.004)
    # the plane weights: whole periods give the binary weights, any exposure sums to one
    dmd = DMDModulation(1e-3, 8, 3e-4)
    np.testing.assert_allclose(dmd.plane_weights(np.array([0.0, 0.37e-3]), 3e-3), np.tile(2.0 ** np.arange(8) / 255, (2, 1)), atol=1e-12)
    w = dmd.plane_weights(np.linspace(0, 1e-3, 7), 1.3e-3)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-12)
    assert np.ptp(w[:, 7]) > 0.05  # where the partial period falls matters


def test_an_lc_input_modulator_follows_cos_squared() -> None:
    with open_bench(input_realism='modulator = "lc"\nlc_phase_coupling = 0.5') as bench:
        lc = reveal_truth(bench.input_slm).realism.modulator
        inner = (slice(30, 90), slice(30, 90))
        full = frame(bench, exposure_s=2e-4)[inner].mean()
        for gray in (0, 60, 128, 200):
            got = frame(bench, np.full((100, 100), gray, dtype=np.uint16), exposure_s=2e-4)[inner].mean() / full
            gamma = lc.retardance_rad(np.array(gray), 256)
            assert got == pytest.approx(np.cos(gamma / 2) ** 2, abs=0.005)
    field = lc.field(np.array([0, 128, 255]), 256)
    gamma = lc.retardance_rad(np.array([0, 128, 255]), 256)
    np.testing.assert_allclose(field / np.cos(gamma / 2), np.exp(-0.5j * lc.phase_coupling * gamma), atol=1e-12)  # phase coupling
    assert 0.4 <= lc.phase_coupling <= 0.5


# -- bad input ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"camera_realism": "zernike_noll = [-2]\nzernike_rms_rad = 0.1"}, "[camera.realism] zernike_noll[0] = -2 is not a Zernike"),
        ({"camera_realism": "zernike_noll = [6, 4]\nzernike_rms_rad = 0.1"}, "[camera.realism] zernike_noll[1] = 4 is piston, tilt or defocus"),
        ({"camera_realism": "zernike_noll = [5]"}, "[camera.realism] zernike_rms_rad is needed"),
        ({"fourier_realism": "flicker_rms_rad = 7.0"}, "[fourier_slm.realism] flicker_rms_rad = 7.0 is not a finite number in [0, 6.28319]"),
        ({"fourier_realism": "phase_drift = 0.1\nphase_drift_time_s = 0.01"}, "[fourier_slm.realism] phase_drift_time_s = 0.01 would saturate within a frame"),
        ({"input_realism": "power_drift_time_s = 0.5"}, "[input_slm.realism] power_drift_time_s = 0.5 would saturate within a frame"),
        ({"input_realism": 'modulator = "oled"'}, "[input_slm.realism] modulator = 'oled' is not an input-modulator kind"),
        ({"input_realism": 'modulator = "lc"\npwm_period_s = 1e-3'}, "[input_slm.realism] pwm_period_s applies to modulator = \"dmd\" only"),
        ({"camera_realism": "sparkle = 1"}, "[camera.realism] sparkle is not a realism option of [camera]"),
        ({"camera_realism": "distortion_k1 = -0.5"}, "[camera.realism] distortion_k1 = -0.5 is not a finite number"),
        ({"camera_realism": "stray_light = nan"}, "[camera] realism.stray_light = nan: every number must be finite"),
    ],
)
def test_bad_realism_options_name_the_table_and_the_key(kwargs: dict, message: str) -> None:
    with pytest.raises(BenchFileError) as error:
        BenchSpec.from_toml(lab_toml(**kwargs)).open()
    assert message in str(error.value)
