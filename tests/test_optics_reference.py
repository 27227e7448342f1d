"""The shared 4f model (labctl/optics) against references computed independently of it: a linear
convolution by scipy.signal.fftconvolve, the analytic sinc spectrum of one modulator pixel, a uniform
field through a flat mirror, Fresnel propagation for defocus, and the panel's own phase levels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.signal import fftconvolve

from drivers.bench import BenchSpec
from labctl.optics.geometry import CameraPose, FourFGeometry
from labctl.optics.layout import OpticalLayout
from labctl.optics.propagation import aperture_envelope, defocus_phase, phase_transmission, slm_transmission
from labctl.optics.sampling import InputSpectrum, SimulationGrid
from labctl.optics.twin import FourFTwin, TwinAssumptions
from tests.conftest import bench_toml

N = 64
GEO = FourFGeometry(wavelength_m=532e-9, f1_m=0.05, f2_m=0.05, rows=N, cols=N, fourier_pitch_m=16e-6)
D_OUT = GEO.output_spacing_m[0]


def _field(spectrum: torch.Tensor, transmission: torch.Tensor) -> np.ndarray:
    """Output field, centred: the second lens as :func:`labctl.optics.propagation.output_intensity` applies it."""
    return torch.fft.fft2(spectrum * transmission, norm="ortho")[0].numpy()


def _smooth_input(n: int, sigma: float = 9.0) -> np.ndarray:
    yy, xx = np.mgrid[:n, :n] - (n - 1) / 2
    return np.exp(-(yy**2 + xx**2) / (2 * sigma**2)) * (1 + 0.5 * np.cos(0.3 * xx + 0.2 * yy))


@pytest.mark.parametrize("m, n_in, region", [(2 * N, 60, N), (90, 40, 40)])
def test_a_wide_kernel_is_a_linear_convolution_with_no_wrap(m: int, n_in: int, region: int) -> None:
    """A 25×25 kernel displaced to the side (reaching 0.3 of the window) as the Fourier mask: the model
    is fftconvolve of the flat-mirror image with the pixelated SLM's kernel (the kernel and its
    neighbouring-order copies under the pixel sinc of their displacement), inverted by the 4f — on a
    grid of two orders and on one of 1.4 (n_in modulator pixels, one output sample wide, and a camera
    ``region`` samples wide keep within its guard band)."""
    grid = SimulationGrid(GEO, m, m)
    spectrum = InputSpectrum(grid, n_in, n_in, D_OUT).apply(torch.tensor(_smooth_input(n_in))[None].float())
    rng = np.random.default_rng(0)
    r, off = 12, (5, -9)
    kernel = rng.normal(size=(2 * r + 1, 2 * r + 1)) + 1j * rng.normal(size=(2 * r + 1, 2 * r + 1))
    canvas = np.zeros((N, N), complex)
    canvas[N // 2 + off[0] - r : N // 2 + off[0] + r + 1, N // 2 + off[1] - r : N // 2 + off[1] + r + 1] = kernel
    pixels = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(canvas)))  # the kernel's spectrum on the SLM
    envelope = aperture_envelope(grid, 1.0)
    flat = _field(spectrum, slm_transmission(torch.ones(N, N, dtype=torch.complex64), envelope))
    out = _field(spectrum, slm_transmission(torch.from_numpy(pixels).to(torch.complex64), envelope))
    # reference kernel over displacements −(m/2 − 1) … m/2 − 1, built by hand
    c = m // 2 - 1
    h = np.zeros((m - 1, m - 1), complex)
    for order_y in (-1, 0, 1):
        for order_x in (-1, 0, 1):
            for i in range(2 * r + 1):
                for j in range(2 * r + 1):
                    dy, dx = i - r + off[0] + order_y * N, j - r + off[1] + order_x * N
                    if abs(dy) <= c and abs(dx) <= c:
                        h[c + dy, c + dx] += kernel[i, j] * np.sinc(dy / N) * np.sinc(dx / N)
    reference = fftconvolve(flat, h[::-1, ::-1], mode="same")  # the 4f inverts: the kernel is reversed
    window = slice(m // 2 - region // 2, m // 2 + region // 2)  # where the camera may sit
    scale = np.abs(out[window, window]).max()
    assert np.abs(out - reference)[window, window].max() < 1e-4 * scale
    # one order wide (the former model), the same kernel wraps: the comparison can fail
    window = slice(m // 2 - N // 2, m // 2 + N // 2)
    one_order = flat[window, window]
    circular = np.fft.ifft2(np.fft.fft2(one_order) * np.fft.fft2(np.fft.ifftshift(canvas[::-1, ::-1]), s=(N, N)))
    circular = np.roll(circular, (1, 1), axis=(0, 1))
    assert np.abs(circular - reference[window, window]).max() > 0.1 * scale


def test_one_modulator_pixel_has_the_analytic_sinc_spectrum_up_to_the_slm_edge() -> None:
    grid = SimulationGrid(GEO, 2 * N, 2 * N)
    n_in, pitch, (j_row, j_col) = 40, 21e-6, (7, 30)
    image = torch.zeros(1, n_in, n_in)
    image[0, j_row, j_col] = 1.0
    spectrum = InputSpectrum(grid, n_in, n_in, pitch).apply(image)[0].to(torch.complex128).numpy()
    # analytic: √W per pixel → rect of side p; its transform at ν = x_F/(λ·f1), per orthonormal sample
    d_in = GEO.input_spacing_m[0]
    nu = np.fft.fftfreq(grid.rows, d_in)  # the sub-sampled window is m·d_in wide
    y, x = ((np.array([j_row, j_col]) - (n_in - 1) / 2) * pitch)
    per_axis = np.sqrt(pitch / (grid.rows * d_in)) * np.sinc(pitch * nu)
    analytic = np.outer(per_axis * np.exp(-2j * np.pi * nu * y), per_axis * np.exp(-2j * np.pi * nu * x))
    np.testing.assert_allclose(spectrum, analytic, atol=1e-6 * np.abs(analytic).max())
    edge = np.argmax(np.abs(nu))  # the SLM's edge: the former resampling gave 0.135 of the sinc there
    assert abs(spectrum[0, edge]) == pytest.approx(abs(analytic[0, edge]), rel=1e-4)


def test_power_is_conserved_through_a_flat_mirror() -> None:
    grid = SimulationGrid(GEO, 2 * N, 2 * N)
    n_in = 60
    amplitude = torch.tensor(_smooth_input(n_in))[None].float()
    spectrum = InputSpectrum(grid, n_in, n_in, D_OUT).apply(amplitude)
    out = _field(spectrum, slm_transmission(torch.ones(N, N, dtype=torch.complex64), aperture_envelope(grid, 1.0)))
    power_in = float(amplitude.square().sum())
    assert float(spectrum.abs().square().sum()) == pytest.approx(power_in, rel=1e-2)  # little beyond the SLM
    assert float(np.square(np.abs(out)).sum()) == pytest.approx(float(spectrum.abs().square().sum()), rel=1e-5)


def _uniform_frame(fill: float, phase: torch.Tensor, layout: OpticalLayout) -> np.ndarray:
    twin = FourFTwin(layout, assumptions=TwinAssumptions(fill_factor=fill))
    return twin(torch.ones(1, layout.input_rows, layout.input_cols), phase).detach()[0].numpy()


def _layout() -> OpticalLayout:
    spec = BenchSpec.from_toml(bench_toml(ideal=True, noise=False))
    from labctl.models.bench_layout import layout_for_bench

    return layout_for_bench(spec, 16, 4)


def test_a_uniform_field_through_a_flat_mirror_stays_uniform() -> None:
    """100 % fill, flat phase: a mirror. The former model dimmed the frame off axis (0.60–0.71 of the centre)."""
    layout = _layout()
    frame = _uniform_frame(1.0, torch.zeros(layout.fourier_rows, layout.fourier_cols), layout)
    inner = frame[10:-10, 10:-10]  # the modulator's image edge rings within a few pixels of the frame's
    centre = frame[layout.camera_rows // 2, layout.camera_cols // 2]
    assert np.abs(inner / centre - 1).max() < 0.03


def test_a_steered_copy_is_uniform_and_dimmed_by_the_sinc_of_its_displacement() -> None:
    """A blazed ramp of s cycles over the panel moves the image by s output samples; the pixelated
    panel puts sinc²(s/N) of the light there (100 % fill), evenly across the copy."""
    layout = _layout()
    geo = layout.geometry
    s_cycles = 30
    _, x = geo.fourier_coords_m()
    ramp = torch.from_numpy(np.broadcast_to(2 * np.pi * s_cycles * x / (geo.cols * geo.fourier_pitch_m), geo.shape).copy()).float()
    twin = FourFTwin(layout)
    patch = torch.ones(1, 30, 30)
    origin = (layout.input_rows // 2 - 15, layout.input_cols // 2 - 15)
    still = twin(patch, torch.zeros(geo.shape), origin).detach()[0].numpy()
    moved = twin(patch, ramp, origin).detach()[0].numpy()
    shift_px = round(s_cycles * geo.output_spacing_m[1] / layout.camera_pitch_m)  # λ·f2·k in camera pixels
    rows = slice(layout.camera_rows // 2 - 8, layout.camera_rows // 2 + 8)
    c0 = layout.camera_cols // 2
    core_still = still[rows, c0 - 8 : c0 + 8]
    core_moved = moved[rows, c0 - 8 + shift_px : c0 + 8 + shift_px]
    assert core_moved.mean() / core_still.mean() == pytest.approx(np.sinc(s_cycles / geo.cols) ** 2, rel=0.02)
    left, right = core_moved[:, :8].mean(), core_moved[:, 8:].mean()
    assert abs(left / right - 1) < 0.02  # the former model had a 1.74x gradient across a copy


def test_defocus_acts_on_every_term_including_the_light_through_the_pixel_gaps() -> None:
    """With a 70 % fill panel, the defocused output equals the in-focus one Fresnel-propagated by Δz."""
    grid = SimulationGrid(GEO, 2 * N, 2 * N)
    n_in = 60
    spectrum = InputSpectrum(grid, n_in, n_in, D_OUT).apply(torch.tensor(_smooth_input(n_in, 3.0))[None].float())
    phase = torch.from_numpy(np.random.default_rng(2).uniform(0, 2 * np.pi, (N, N))).float()
    focus = phase_transmission(phase, aperture_envelope(grid, 0.7))
    dz = 20e-3
    defocused = focus * torch.polar(torch.ones(grid.shape), defocus_phase(grid, dz))
    out_focus, out_defocus = _field(spectrum, focus), _field(spectrum, defocused)
    f = np.fft.fftfreq(grid.rows, D_OUT)
    transfer = np.exp(-1j * np.pi * GEO.wavelength_m * dz * (f[:, None] ** 2 + f[None, :] ** 2))
    reference = np.fft.fftshift(np.fft.ifft2(np.fft.fft2(np.fft.ifftshift(out_focus)) * transfer))
    np.testing.assert_allclose(out_defocus, reference, atol=1e-4 * np.abs(reference).max())
    assert np.abs(out_defocus - out_focus).max() > 0.1 * np.abs(out_focus).max()  # defocus is visible


def test_the_grid_keeps_every_modulator_to_camera_displacement_inside_the_window() -> None:
    grid = SimulationGrid.for_devices(GEO, 60, 60, 15e-6, 70, 70, 12e-6, CameraPose(scale=1.02))
    window = grid.window_m[1]
    assert 60 * 15e-6 / 2 + 70 * 12e-6 * 1.02 / 2 < window / 2
    one_order = SimulationGrid(GEO, N, N).window_m[1]
    assert 60 * 15e-6 / 2 + 70 * 12e-6 * 1.02 / 2 > one_order / 2  # one order would not do here


def _calibrated_table(phi_max: float, gamma: float, k: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """(phase of each 8-bit gray level, the table that inverts it over one 2π): nearest gray per target."""
    phases = phi_max * (np.arange(256) / 255) ** gamma
    targets = 2 * np.pi * np.arange(k) / k
    circular = np.abs(np.angle(np.exp(1j * (phases[None, :] - targets[:, None]))))
    usable = phases < 2 * np.pi - np.pi / k  # beyond 2π the panel repeats itself
    gray = np.argmin(np.where(usable[None, :], circular, np.inf), axis=1)
    return phases, gray.astype(np.uint16)


@pytest.mark.parametrize("phi_max, gamma", [(2 * np.pi * 1.04, 1.0), (2 * np.pi * 1.25, 0.9), (2 * np.pi * 1.15, 1.15)])
def test_quantisation_follows_the_panels_real_phase_levels(phi_max: float, gamma: float) -> None:
    from labctl.optics.quantise import round_to_levels, table_phase_levels

    phases, gray = _calibrated_table(phi_max, gamma)
    levels = np.array(table_phase_levels(gray))
    shown = phases[np.unique(gray)]  # what the panel really shows for the grays the table uses
    assert len(levels) == len(shown) < 256  # 256 per 2π is what a linear table would show
    # each shown phase has its level, to within the table's bin and the asymmetry of its neighbours' gaps
    distance = np.abs(np.angle(np.exp(1j * (shown[:, None] - levels[None, :]))))
    assert distance.min(axis=1).max() < 0.25 * 2 * np.pi / len(levels) + 2 * np.pi / 1024
    assert len(np.unique(distance.argmin(axis=1))) == len(levels)  # one level per shown phase
    phase = torch.linspace(-1.0, 8.0, 5001, requires_grad=True)
    rounded = round_to_levels(phase, torch.from_numpy(levels))
    wrapped = np.mod(phase.detach().numpy(), 2 * np.pi)
    distance = np.abs(np.angle(np.exp(1j * (wrapped[:, None] - levels[None, :]))))
    nearest = levels[np.argmin(distance, axis=1)]
    np.testing.assert_allclose(rounded.detach().numpy(), nearest, atol=1e-5)
    rounded.sum().backward()
    assert torch.all(phase.grad == 1)  # straight through


def test_an_optics_aware_mask_takes_only_the_layouts_phase_levels() -> None:
    from labctl.models.optics_aware import OpticsAwareConfig, OpticsAwareStudent
    from labctl.optics.quantise import table_phase_levels

    levels = table_phase_levels(_calibrated_table(2 * np.pi * 1.2, 1.0)[1])
    layout = OpticalLayout.from_dict({**_layout().to_dict(), "phase_levels": list(levels)})
    assert OpticalLayout.from_dict(layout.to_dict()) == layout
    student = OpticsAwareStudent(OpticsAwareConfig("classification", 1, 16, 10, layout=layout.to_dict()))
    shown = np.unique(student.phase_mask().detach().numpy())
    off_level = np.abs(shown[:, None] - np.array(levels)[None, :]).min(axis=1)
    assert off_level.max() < 1e-5 and len(levels) < 256


def test_an_image_only_twin_is_the_full_twin_on_a_smaller_grid_and_refuses_other_light() -> None:
    layout = _layout()
    full, image_only = FourFTwin(layout), FourFTwin(layout, image_only=True)
    assert image_only.grid.rows < full.grid.rows
    side = layout.image_size * layout.image_scale
    patch = torch.rand(2, side, side)
    phase = torch.rand(layout.fourier_rows, layout.fourier_cols) * 6
    origin = (layout.image_row, layout.image_col)
    expected = full(patch, phase, origin)
    # the same light; only the faint tails of the aperture-limited image fold back differently
    assert float((image_only(patch, phase, origin) - expected).abs().max()) < 0.01 * float(expected.max())
    whole = torch.zeros(1, layout.input_rows, layout.input_cols)
    whole[0, 0, 0] = 1.0  # a lit pixel outside the image
    with pytest.raises(ValueError, match="image patch"):
        image_only(whole, phase)


def test_table_levels_stay_below_two_pi_when_a_level_sits_just_below_zero() -> None:
    from labctl.optics.quantise import table_phase_levels

    k = 128
    gray = np.arange(k) * 2  # one target per gray level, 0..254
    gray[[k - 1, 0, 1]] = 255  # level 255 stands for the targets around 0: its mean angle is about -1e-17 rad
    levels = table_phase_levels(gray)
    assert levels[-1] < 2 * np.pi and list(levels) == sorted(levels) and len(levels) == len(set(levels))
