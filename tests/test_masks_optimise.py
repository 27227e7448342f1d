"""The optimised encoding through a calibrated fringing panel: it must raise the readout match
from the data-free start (a free phase, wrapped inside the twin, lowered it: 0.38 -> 0.18 in the
same 20 steps, where the bounded one reaches 0.54)."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from drivers.bench import BenchSpec
from labctl.data import load_dataset
from labctl.masks.filter_bank import fourier_mask
from labctl.masks.iterative import iterative_phase, output_region
from labctl.masks.optimise import PhaseOptimisation, optimise_phase
from labctl.models.bench_layout import layout_for_bench
from labctl.models.optics_aware import ideal_affine
from labctl.optics.layout import guard_for_kernel, modulator_amplitudes

SIZE, KERNEL, CHANNELS = 28, 9, 16


def test_optimised_encoding_gains_through_a_wide_fringing_panel() -> None:
    rng = np.random.default_rng(1)
    kernels = np.zeros((CHANNELS, SIZE, SIZE))
    lo = SIZE // 2 - KERNEL // 2
    kernels[:, lo : lo + KERNEL, lo : lo + KERNEL] = rng.normal(size=(CHANNELS, KERNEL, KERNEL))
    bank = torch.from_numpy(np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(kernels, axes=(-2, -1))), axes=(-2, -1)))[:, None]
    packed = layout_for_bench(BenchSpec.default(), SIZE, CHANNELS, guard_image_px=guard_for_kernel(KERNEL), packed=True)
    panel = dataclasses.replace(packed, fringing_sigma_px=0.7, fill_factor=0.95)  # the widest simulated panel
    mask = fourier_mask(bank, panel)
    start, _ = iterative_phase(mask, output_region(panel, KERNEL // 2), np.angle(mask))
    images = (load_dataset("fashion-mini").train.images[:32].float().numpy() / 255).astype(np.float32)
    amplitudes = torch.from_numpy(modulator_amplitudes(images, panel))
    phase, summary = optimise_phase(start, bank.to(torch.complex64), panel, torch.from_numpy(images), amplitudes,
                                    ideal_affine(panel), PhaseOptimisation(steps=20), support=KERNEL)
    assert summary["match_after"] > summary["match_before"] + 0.1
    assert phase.shape == start.shape and 0 <= phase.min() and phase.max() < 2 * np.pi
