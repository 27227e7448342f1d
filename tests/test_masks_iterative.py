"""The data-free iterative encoding and the packed layout it needs: each channel's light stays in its
region, the iteration shapes the field there, the twin reads the filters better than through
double-phase, and bad input is named."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from drivers.bench import BenchSpec
from labctl.data import load_dataset
from labctl.masks.encoding import double_phase
from labctl.masks.filter_bank import fourier_mask
from labctl.masks.iterative import (
    IterativeEncoding,
    IterativeEncodingError,
    impulse_response,
    iterative_phase,
    output_region,
    panel_region_error,
)
from labctl.masks.optimise import readout_match
from labctl.models.optics_aware import ideal_affine
from labctl.models.spectral import apply_filter_bank
from labctl.models.bench_layout import layout_for_bench
from labctl.optics.layout import OpticalLayout, guard_for_kernel, modulator_amplitudes
from labctl.optics.readout import channel_points, read_channels
from labctl.optics.twin import FourFTwin

SIZE, KERNEL, CHANNELS = 28, 9, 16


def _bank(channels: int, seed: int = 0) -> torch.Tensor:
    """Centred filters (C, 1, n, n) of random real kernels KERNEL px wide."""
    rng = np.random.default_rng(seed)
    kernels = np.zeros((channels, SIZE, SIZE))
    lo = SIZE // 2 - KERNEL // 2
    kernels[:, lo : lo + KERNEL, lo : lo + KERNEL] = rng.normal(size=(channels, KERNEL, KERNEL))
    spectra = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(kernels, axes=(-2, -1))), axes=(-2, -1))
    return torch.from_numpy(spectra)[:, None]


@pytest.fixture(scope="module")
def packed() -> OpticalLayout:
    return layout_for_bench(BenchSpec.default(), SIZE, CHANNELS, guard_image_px=guard_for_kernel(KERNEL), packed=True)


def test_packing_keeps_the_frames_and_the_guard_band_and_frees_the_windows_rim() -> None:
    guard = guard_for_kernel(KERNEL)
    for channels in (16, 32, 40):
        spread = layout_for_bench(BenchSpec.default(), SIZE, channels, guard_image_px=guard)
        tight = layout_for_bench(BenchSpec.default(), SIZE, channels, guard_image_px=guard, packed=True)
        assert tight.channel_groups == spread.channel_groups and tight.image_scale == spread.image_scale
        # the channels spread evenly over the frames (32 on a 25-tile bench: 16 + 16, not 25 + 7)
        assert len(tight.tiles) == -(-channels // tight.channel_groups)
        rows = sorted({r for r, _ in tight.tiles})
        assert rows[1] - rows[0] < sorted({r for r, _ in spread.tiles})[1] - sorted({r for r, _ in spread.tiles})[0]
        reach = KERNEL // 2
        assert output_region(tight, reach).mean() < 0.8 < 0.9 < output_region(spread, reach).mean()


def test_each_channels_impulse_response_lies_in_its_own_region(packed: OpticalLayout) -> None:
    bank = _bank(CHANNELS)
    for c in (0, 5, CHANNELS - 1):
        one = OpticalLayout.from_dict({**packed.to_dict(), "tiles": [packed.tiles[c]], "channels": 1})
        energy = np.abs(impulse_response(fourier_mask(bank[[c]], one))) ** 2
        own = output_region(one, KERNEL // 2)
        assert energy[own].sum() > 0.99 * energy.sum()
        assert (own & output_region(packed, KERNEL // 2)).sum() == own.sum()


def test_iteration_shapes_the_field_in_the_region_and_sends_the_rest_outside(packed: OpticalLayout) -> None:
    mask = fourier_mask(_bank(CHANNELS), packed)
    region = output_region(packed, KERNEL // 2)
    phase, summary = iterative_phase(mask, region, np.angle(mask), IterativeEncoding(iterations=30))
    assert phase.shape == mask.shape and phase.min() >= 0 and phase.max() < 2 * np.pi
    assert summary["region_error_after"] < 0.5 * summary["region_error_before"]
    assert summary["region_error_after"] < 0.2
    # a phase-only mask passes all the light: what is not in the wanted field lies outside the region
    field = impulse_response(np.exp(1j * phase))
    outside = (np.abs(field[~region]) ** 2).sum() / (np.abs(field) ** 2).sum()
    assert outside > 0.3 and 0 < summary["region_light"] < 1


def test_the_twin_reads_the_filters_better_than_through_double_phase(packed: OpticalLayout) -> None:
    bank = _bank(CHANNELS, seed=1)
    mask = fourier_mask(bank, packed)
    images = load_dataset("digits").test.images[:8].float().numpy() / 255.0
    target = apply_filter_bank(torch.from_numpy(images), bank.to(torch.complex64), support=KERNEL).abs().square()
    twin = FourFTwin(packed)
    points = channel_points(packed, ideal_affine(packed))
    amplitudes = torch.from_numpy(modulator_amplitudes(images, packed))

    def match(phase: np.ndarray) -> float:
        with torch.no_grad():
            return readout_match(read_channels(twin(amplitudes, torch.from_numpy(phase).float()), points), target)

    with torch.no_grad():  # an SLM that could show the complex filters as they are
        ideal = readout_match(read_channels(twin.frames(amplitudes, twin.pixel_transmission(torch.from_numpy(mask))), points), target)
    iterative, _ = iterative_phase(mask, output_region(packed, KERNEL // 2), np.angle(mask))
    dp, _ = double_phase(mask, 30.0)
    assert match(iterative) > ideal - 0.01 and match(iterative) > match(dp) + 0.02


def test_panel_region_error_grows_with_the_panels_fringing_and_gaps(packed: OpticalLayout) -> None:
    mask = fourier_mask(_bank(CHANNELS, seed=2), packed)
    region = output_region(packed, KERNEL // 2)
    phase, summary = iterative_phase(mask, region, np.angle(mask), IterativeEncoding(iterations=30))
    assert panel_region_error(phase, mask, region) == pytest.approx(summary["region_error_after"], rel=1e-6)
    errors = [panel_region_error(phase, mask, region, sigma, 0.95) for sigma in (0.0, 0.35, 0.5, 0.7)]
    assert np.all(np.diff(errors) > 0) and errors[-1] > 1.0 > errors[1]  # fine phase structure smoothed away
    assert panel_region_error(phase, mask, region, 0.0, 0.8) > panel_region_error(phase, mask, region)  # the gaps' light


@pytest.mark.parametrize(
    "mask, region, start, config, message",
    [
        (np.ones((8, 8)), np.ones((8, 4), bool), np.zeros((8, 8)), IterativeEncoding(), "must be one 2-D shape"),
        (np.full((8, 8), np.nan), np.ones((8, 8), bool), np.zeros((8, 8)), IterativeEncoding(), "NaN or inf"),
        (np.ones((8, 8)), np.zeros((8, 8), bool), np.zeros((8, 8)), IterativeEncoding(), "region is empty"),
        (np.ones((8, 8)), np.ones((8, 8), bool), np.zeros((8, 8)), IterativeEncoding(iterations=-1), "iterations must be >= 0"),
    ],
)
def test_bad_input_is_named(mask, region, start, config, message) -> None:
    with pytest.raises(IterativeEncodingError, match=message):
        iterative_phase(mask, region, start, config)


def test_a_region_for_more_channels_than_tiles_is_refused(packed: OpticalLayout) -> None:
    with pytest.raises(IterativeEncodingError, match=f"{len(packed.tiles) + 1} channel"):
        output_region(packed, 4, len(packed.tiles) + 1)
