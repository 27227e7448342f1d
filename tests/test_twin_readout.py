"""The digital twin matches the simulated bench; a collapsed filter bank laid out as tiles is read
back, channel by channel, as the digital convolution it stands for."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from drivers.bench import BenchSpec
from labctl.masks.filter_bank import FilterBankError, fourier_mask
from labctl.models.bench_layout import layout_for_bench
from labctl.optics.layout import OpticalLayout
from labctl.models.spectral import apply_filter_bank, kernel_spectrum
from labctl.optics.readout import channel_points, read_channels
from labctl.optics.twin import FourFTwin
from labctl.models.optics_aware import ideal_affine
from labctl.optics.layout import modulator_amplitudes
from mock_hw.truth import reveal_truth
from tests.conftest import bench_toml


def _frames(text: str, amp: np.ndarray, phase: np.ndarray):
    with BenchSpec.from_toml(text).open() as b:
        b.fourier_slm.write_phase(phase)
        b.camera.trigger_source = "hardware"
        b.camera.exposure_s = 1e-4
        b.input_slm.write_amplitude(amp)
        frames = b.camera.read_frames(len(amp)).data.astype(float)
        truth = reveal_truth(b.camera)
    return frames - truth.sensor.dark_offset_dn, truth.pose


@pytest.mark.parametrize("misaligned", [False, True])
def test_twin_with_the_bench_pose_reproduces_the_simulated_frames(misaligned: bool) -> None:
    text = bench_toml(ideal=True, noise=False)
    if misaligned:
        text = text.replace("ideal = true\nnoise", "ideal = false\nnoise")
    spec = BenchSpec.from_toml(text)
    layout = layout_for_bench(spec, 16, 4)
    rng = np.random.default_rng(0)
    amp = rng.random((2, layout.input_rows, layout.input_cols))
    phase = rng.uniform(0, 2 * np.pi, (layout.fourier_rows, layout.fourier_cols))
    frames, pose = _frames(text, amp, phase)
    twin_frames = FourFTwin(layout, pose)(torch.tensor(amp), torch.tensor(phase)).detach().numpy()
    assert np.corrcoef(frames.ravel(), twin_frames.ravel())[0, 1] > 0.999
    if misaligned:  # the nominal twin cannot explain a misaligned camera: the comparison can fail
        nominal = FourFTwin(layout)(torch.tensor(amp), torch.tensor(phase)).detach().numpy()
        assert np.corrcoef(frames.ravel(), nominal.ravel())[0, 1] < 0.99


def test_tiled_filter_bank_reads_back_as_the_digital_convolution() -> None:
    spec = BenchSpec.from_toml(bench_toml(ideal=True, noise=False))
    n, channels = 16, 4
    layout = layout_for_bench(spec, n, channels)
    torch.manual_seed(0)
    kernels = torch.randn(channels, 1, 3, 3)
    bank = kernel_spectrum(kernels, n, n).to(torch.complex64)
    images = torch.zeros(6, 1, n, n)
    images[:, :, 4:12, 4:12] = torch.rand(6, 1, 8, 8)
    digital = apply_filter_bank(images, bank).abs().square()
    mask = fourier_mask(bank, layout)
    twin = FourFTwin(layout)
    # the complex (amplitude and phase) mask applied directly: the filter bank itself, before encoding
    amp = torch.from_numpy(modulator_amplitudes(images.numpy(), layout))
    field_twin_frames = _complex_mask_frames(twin, amp, torch.tensor(mask / np.abs(mask).max()))
    readout = read_channels(field_twin_frames, channel_points(layout, ideal_affine(layout)))
    for c in range(channels):
        r = np.corrcoef(readout[:, c].ravel(), digital[:, c].ravel())[0, 1]
        assert r > 0.9, f"channel {c}: correlation {r:.3f}"
    # swapping two tiles' readouts breaks the match: the test can tell channels apart
    assert np.corrcoef(readout[:, 0].ravel(), digital[:, 1].ravel())[0, 1] < 0.9


def _complex_mask_frames(twin: FourFTwin, amp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return twin.frames(amp, twin.pixel_transmission(mask))


def test_filter_bank_that_does_not_fit_the_layout_is_refused() -> None:
    layout = layout_for_bench(BenchSpec.from_toml(bench_toml()), 16, 4)
    with pytest.raises(FilterBankError, match="one input field"):
        fourier_mask(torch.zeros(4, 3, 16, 16, dtype=torch.complex64), layout)
    with pytest.raises(FilterBankError, match="layout has 4 tiles"):
        fourier_mask(torch.zeros(5, 1, 16, 16, dtype=torch.complex64), layout)
    with pytest.raises(FilterBankError, match="16-px image"):
        fourier_mask(torch.zeros(4, 1, 12, 12, dtype=torch.complex64), layout)


def test_twin_on_a_patch_equals_the_twin_on_the_whole_modulator() -> None:
    layout = layout_for_bench(BenchSpec.from_toml(bench_toml()), 16, 4)
    twin = FourFTwin(layout)
    patch = torch.rand(2, 20, 24)
    full = torch.zeros(2, layout.input_rows, layout.input_cols)
    full[:, 30:50, 40:64] = patch
    phase = torch.rand(layout.fourier_rows, layout.fourier_cols) * 6
    torch.testing.assert_close(twin(patch, phase, origin=(30, 40)), twin(full, phase), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="leaves"):
        twin(patch, phase, origin=(90, 0))


def _leaky_modulator_bench(monkeypatch) -> tuple[str, float]:
    """An ideal, noiseless bench but for its input modulator's leak (under a flat beam): the bench text
    and the hidden leak."""
    import dataclasses

    import mock_hw.slm

    drawn = mock_hw.slm.draw_input_slm_truth
    monkeypatch.setattr(mock_hw.slm, "draw_input_slm_truth", lambda *a, **k: dataclasses.replace(
        drawn(*a, **k), beam_waist_m=np.inf, beam_center_m=(0.0, 0.0)))
    text = bench_toml(ideal=True, noise=False).replace("ideal = true", "ideal = false", 1)  # the input modulator's
    with BenchSpec.from_toml(text).open() as b:
        leak = reveal_truth(b.input_slm).leak_amplitude
    return text, leak


def test_twin_with_the_modulators_leak_reproduces_the_simulated_frames(monkeypatch) -> None:
    """Every dark modulator pixel sends the leak, coherently with the image: the twin given the leak
    reproduces the frames; the twin without it does not."""
    import dataclasses

    text, leak = _leaky_modulator_bench(monkeypatch)
    assert 0.01 <= leak <= 0.04
    layout = layout_for_bench(BenchSpec.from_toml(text), 16, 4)
    rng = np.random.default_rng(1)
    wanted = np.zeros((2, layout.input_rows, layout.input_cols))
    r0, c0 = layout.image_row, layout.image_col
    wanted[:, r0 : r0 + 16, c0 : c0 + 16] = rng.random((2, 16, 16))
    # shown through the linear table, a raw gray level shows leak + (1 − leak)·gray: the amplitude that
    # delivers max(wanted, leak), as a calibrated table does
    shown = np.clip((wanted - leak) / (1 - leak), 0, 1)
    phase = rng.uniform(0, 2 * np.pi, (layout.fourier_rows, layout.fourier_cols))
    frames, pose = _frames(text, shown, phase)
    leaky = dataclasses.replace(layout, input_leak=leak)

    def match(lay: OpticalLayout) -> float:
        twin_frames = FourFTwin(lay, pose)(torch.tensor(wanted), torch.tensor(phase)).detach().numpy()
        return float(np.corrcoef(frames.ravel(), twin_frames.ravel())[0, 1])

    with_leak, without = match(leaky), match(layout)  # measured 0.9970 and 0.9577 (an ideal bench: 0.9974)
    assert with_leak > 0.995 and without < with_leak - 0.02, (with_leak, without)


def test_an_image_only_twin_adds_the_leak_of_the_whole_modulator() -> None:
    """The image-only twin's grid covers the image patch, not the modulator: its leak is propagated on
    a grid that does and cropped; the same frames as the whole modulator's twin showing max(a, leak)
    (a table of the field) or leak + (1 − leak)·a (binary mirrors)."""
    import dataclasses

    torch.manual_seed(0)
    layout = dataclasses.replace(layout_for_bench(BenchSpec.from_toml(bench_toml()), 16, 4), input_leak=0.03)
    no_leak = dataclasses.replace(layout, input_leak=0.0)
    patch = torch.rand(2, 16, 16)
    origin = (layout.image_row, layout.image_col)
    full = torch.zeros(2, layout.input_rows, layout.input_cols)
    full[:, origin[0] : origin[0] + 16, origin[1] : origin[1] + 16] = patch
    phase = torch.rand(layout.fourier_rows, layout.fourier_cols) * 6
    image_only = FourFTwin(layout, image_only=True)
    assert all(a < b for a, b in zip(image_only.grid.shape, FourFTwin(layout).grid.shape))
    with torch.no_grad():
        # the leak's light alone (a dark image): the crop of the whole modulator's field, to rounding
        dark_image = FourFTwin(layout)(torch.zeros_like(full), phase)
        torch.testing.assert_close(image_only(torch.zeros_like(patch), phase, origin), dark_image,
                                   rtol=0, atol=1e-5 * float(dark_image.max()))
        brute = FourFTwin(no_leak)(full.clamp(min=0.03), phase)
        torch.testing.assert_close(FourFTwin(layout)(full, phase), brute, rtol=0, atol=1e-5 * float(brute.max()))
        adds = dataclasses.replace(layout, input_leak_adds=True)
        brute_adds = FourFTwin(no_leak)(0.03 + 0.97 * full, phase)
        torch.testing.assert_close(FourFTwin(adds)(full, phase), brute_adds, rtol=0, atol=1e-5 * float(brute_adds.max()))
        # the image-only grid drops light a random mask sends past the camera's reach: 0.6 % of the
        # peak here with no leak; the leak adds nothing to that
        patch_error = float((FourFTwin(no_leak, image_only=True)(patch, phase, origin) - FourFTwin(no_leak)(full, phase)).abs().max())
        leak_error = float((image_only(patch, phase, origin) - brute).abs().max())
        dark = FourFTwin(no_leak)(full, phase)
    assert leak_error < 1.5 * patch_error + 1e-6 * float(brute.max()), (leak_error, patch_error)
    assert float((dark - brute).abs().max()) > 10 * leak_error  # the leak matters to the frames
    assert float((brute_adds - brute).abs().max()) > 0.02 * float(brute.max())  # and how the table shows it
