"""Twin refinement's lab parameters, the physics-aware trainer's quantisation, the in-situ benchmark's
bench files: small and fast (a digits-sized layout on the embedded bench's geometry)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from drivers.bench import BenchSpec
from drivers.phase_table import PhaseTable
from labctl.insitu.pat import PATConfig, PhysicsAwareTrainer
from labctl.insitu.session import shown_levels
from labctl.insitu.twin_fit import ChannelAffine, RefinableTwin, TwinFitConfig, refine_twin, residual_report, twin_readout
from labctl.optics.zernike import zernike
from labctl.models.bench_layout import layout_for_bench
from labctl.models.optics_aware import ideal_affine, initial_phase
from labctl.optics.quantise import table_phase_levels, uniform_levels
from labctl.optics.readout import channel_points
from labctl.optics.twin import FourFTwin

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def layout():
    return layout_for_bench(BenchSpec.default(), 8, 4)


def _inputs(layout, n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    side = layout.image_size * layout.image_scale
    amp = torch.zeros(n, layout.input_rows, layout.input_cols)
    img = torch.rand(n, layout.image_size, layout.image_size, generator=g)
    amp[:, layout.image_row : layout.image_row + side, layout.image_col : layout.image_col + side] = (
        img.repeat_interleave(layout.image_scale, 1).repeat_interleave(layout.image_scale, 2)
    )
    return amp


def test_zernike_terms_are_orthonormal_over_the_unit_disk() -> None:
    y, x = np.mgrid[-1:1:401j, -1:1:401j]
    rho, theta = np.hypot(x, y), np.arctan2(y, x)
    inside = rho <= 1
    z = np.stack([zernike(j, rho, theta)[inside] for j in (4, 5, 6, 7, 11)])
    gram = z @ z.T / inside.sum()
    assert np.allclose(gram, np.eye(5), atol=0.02)


def test_refinable_twin_unfitted_is_the_shared_twin(layout, one_torch_thread) -> None:
    phase = initial_phase(layout, torch.Generator().manual_seed(0))
    amp = _inputs(layout, 2)
    shared, refinable = FourFTwin(layout)(amp, phase), RefinableTwin(layout)(amp, phase)
    assert torch.allclose(shared, refinable, rtol=1e-4, atol=1e-6 * float(shared.max()))


def test_refinement_recovers_leak_aberration_and_distortion(layout, one_torch_thread) -> None:
    """Frames of a twin with a leaky modulator, a Gaussian beam, astigmatism and barrel distortion:
    the fit moves each parameter towards its truth and leaves a smaller residual, which it reports."""
    phase = initial_phase(layout, torch.Generator().manual_seed(1))
    amp = _inputs(layout, 16, seed=2)
    points = channel_points(layout, ideal_affine(layout), 1)
    truth = RefinableTwin(layout)
    with torch.no_grad():
        truth.input_leak.fill_(0.03)
        truth.beam_curvature.fill_(1.5)
        truth.zernike_rad[0] = 0.4  # astigmatism
        truth.distortion[0] = 0.02
    bench = twin_readout(truth, amp, phase, points, 1) * 3.0 + 0.1
    twin = RefinableTwin(layout)
    config = TwinFitConfig(steps=25, batch_size=4,
                           parameters=("input_leak", "beam_curvature", "zernike_rad", "distortion"))
    affine, summary = refine_twin(twin, amp, phase, bench, points, 1, config)
    assert summary["match_after"] > summary["match_before"]
    assert summary["residual_rel"] < 0.7 * summary["residual_before"]
    assert 0.02 < summary["input_leak"] < 0.04  # from 0: a bound parameter can leave its bound
    assert summary["zernike_5_rad"] > 0.2 and summary["distortion_q1"] > 0.005 and summary["beam_waist"] < 3
    assert isinstance(affine, ChannelAffine) and 0 <= summary["residual_frame_share"] <= 1


def test_residual_report_splits_frame_wise_from_structure() -> None:
    bench = torch.rand(10, 2, 4, 4) + 1
    offsets = torch.randn(10, 2, 1, 1) * 0.1
    report = residual_report(bench - offsets, bench)
    assert report["residual_frame_share"] == pytest.approx(1.0)
    assert report["residual_rel"] > 0 and report["residual_rel_worst_channel"] >= report["residual_rel"] * 0.99


def test_physics_aware_trainer_shows_the_calibrated_tables_levels(layout) -> None:
    # a calibrated panel: 230 of 256 gray levels within 2π, unevenly spaced
    k = np.arange(1024)
    gray = np.rint(230 * (k / 1024) ** 1.15).astype(np.uint16)
    table = PhaseTable(gray=gray, bit_depth=8, record_id="slm-cal")
    levels = shown_levels(table)
    assert torch.allclose(levels, torch.tensor(table_phase_levels(gray), dtype=torch.float64))
    assert torch.allclose(shown_levels(PhaseTable.linear(8)), torch.tensor(uniform_levels(8), dtype=torch.float64))
    phase = torch.rand(layout.geometry.rows, layout.geometry.cols) * 2 * math.pi
    trainer = PhysicsAwareTrainer(phase, torch.nn.Linear(1, 1), RefinableTwin(layout), torch.zeros(1, 1, 1, 2), 1,
                                  ChannelAffine(torch.ones(1), torch.zeros(1)), levels, PATConfig())
    shown = trainer.shown_phase().detach().double()
    nearest = (shown.reshape(-1, 1) - levels.reshape(1, -1)).abs().min(dim=1).values
    assert float(nearest.max()) < 1e-5  # every pixel shows one of the table's levels
    step = float(torch.diff(levels).max())
    assert float(torch.remainder(shown - phase.double() + math.pi, 2 * math.pi).sub(math.pi).abs().max()) <= step / 2 + 1e-5


def _benchmark():
    spec = importlib.util.spec_from_file_location("insitu_benchmark", ROOT / "benchmarks" / "insitu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_varies_every_device_seed_of_a_bench_file() -> None:
    text = (ROOT / "mock_hw" / "lab_bench.toml").read_text()
    bench = _benchmark()
    assert bench.bench_file_for_seed(text, 0, 0.0, 1.0) == text
    two = bench.bench_file_for_seed(text, 2, 100.0, 1.5)
    spec = BenchSpec.from_toml(two)
    raw = spec.raw
    assert [raw[r]["seed"] for r in ("input_slm", "fourier_slm", "camera")] == [21, 22, 23]
    assert raw["camera"]["defocus_m"] == pytest.approx(1e-4) and raw["camera"]["misalignment"] == 1.5
    assert raw["camera"]["realism"]["zernike_rms_rad"] == 0.4  # the realism tables kept


def test_subpixel_fringing_loses_light_only_where_the_phase_steps() -> None:
    from labctl.insitu.twin_fit import subpixel_fringing

    phase = torch.zeros(8, 8)
    phase[:, 4:] = 2 * math.pi - 0.1  # a wrap: nearly the same wrapped phase, a full swing of the drive
    pixels = subpixel_fringing(phase, torch.tensor(0.35))
    assert torch.allclose(pixels[:, :2].abs(), torch.ones(8, 2), atol=1e-5)  # far from the step: unit modulus
    assert float(pixels[:, 3:5].abs().max()) < 0.8  # the flyback
    thin = subpixel_fringing(phase, torch.tensor(0.02))
    assert torch.allclose(thin, torch.polar(torch.ones_like(phase), phase), atol=1e-3)
    width = torch.tensor(0.3, requires_grad=True)
    subpixel_fringing(phase, width).abs().sum().backward()
    assert float(width.grad) < 0  # wider fringing: less light through


def test_lc_phase_offset_follows_the_tables_gray_branch() -> None:
    """A panel reaching 2.4π over its gray range: the table uses gray 200 for a target of 0.1 rad (the
    branch 2π up) and gray 10 for 0.2 rad; the liquid crystal sees the first 2π above the second."""
    from labctl.insitu.twin_fit import lc_phase_offset

    k = 1024
    target = 2 * np.pi * np.arange(k) / k
    per_gray = 2.4 * np.pi / 255  # phase per gray level
    low = np.rint(target / per_gray).astype(int)
    high = np.rint((target + 2 * np.pi) / per_gray).astype(int)
    gray = np.where((high <= 255) & (np.arange(k) % 2 == 0), high, low)  # interleaved branches where both exist
    table = PhaseTable(gray=gray.astype(np.uint16), bit_depth=8, record_id="test")
    phase = np.array([[target[2], target[3]]])
    shown = table.gray_for_phase(phase)
    offset = lc_phase_offset(table, phase, shown)
    expected = np.where(shown > 0.5 * 255 / 1.2, 2 * np.pi, 0.0) * (phase < 0.4 * np.pi)
    assert np.array_equal(offset, expected) and offset.max() == pytest.approx(2 * np.pi)


def test_a_dmd_twin_adds_bit_plane_intensities(layout, one_torch_thread) -> None:
    phase = initial_phase(layout, torch.Generator().manual_seed(3))
    binary = (_inputs(layout, 2, seed=4) > 0.5).float()
    amplitude, dmd = RefinableTwin(layout), RefinableTwin(layout, input_bits=8)
    with torch.no_grad():
        for twin in (amplitude, dmd):
            twin.input_leak.fill_(0.02)
        # binary inputs: every bit plane is the image itself, so both modulators give the same frames
        assert torch.allclose(dmd(binary, phase), amplitude(binary, phase), rtol=1e-4, atol=1e-7)
        half = binary * (128 / 255)  # one bit plane at 128/255 of the exposure: intensity linear in gray
        assert torch.allclose(dmd(half, phase), (128 / 255) * dmd(binary, phase) + (127 / 255) * dmd(torch.zeros_like(binary), phase),
                              rtol=1e-3, atol=1e-7)
