"""Mask encoding and the mask file: phase-only encoding is exact where it should be; files that do
not fit the bench are refused before anything is shown."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from drivers.bench import BenchSpec
from drivers.description import BenchDescription
from labctl.masks.encoding import EncodingError, double_phase
from labctl.masks.mask_file import MaskFile, MaskFileError
from labctl.models.bench_layout import layout_for_bench
from labctl.optics.layout import OpticalLayout
from tests.conftest import bench_toml


def test_double_phase_pairs_average_to_the_complex_value() -> None:
    rng = np.random.default_rng(0)
    mask = rng.uniform(0.1, 2.0, (8, 8)) * np.exp(1j * rng.uniform(-np.pi, np.pi, (8, 8)))
    phase, peak = double_phase(mask)
    assert peak == pytest.approx(np.abs(mask).max())
    assert phase.min() >= 0 and phase.max() < 2 * np.pi
    # Each pixel holds one of the two phasors whose mean is the value, alternating on a checkerboard.
    rows, cols = np.indices(mask.shape)
    sign = np.where((rows + cols) % 2 == 0, 1.0, -1.0)
    shown = np.exp(1j * phase)
    partner = np.exp(1j * (2 * np.angle(mask) - phase))  # the other phasor of the pair
    np.testing.assert_allclose(0.5 * (shown + partner), mask / peak, atol=1e-9)
    expected = np.angle(mask) + sign * np.arccos(np.abs(mask) / peak)
    np.testing.assert_allclose(np.exp(1j * expected), shown, atol=1e-9)


@pytest.mark.parametrize("bad, message", [(np.zeros((4, 4), complex), "zero everywhere"),
                                          (np.full((4, 4), np.nan + 0j), "NaN"),
                                          (np.ones(4, complex), "2-D")])
def test_double_phase_refuses_bad_masks(bad, message) -> None:
    with pytest.raises(EncodingError, match=message):
        double_phase(bad)


def _layout() -> OpticalLayout:
    spec = BenchSpec.from_toml(bench_toml())
    return layout_for_bench(spec, 16, 4)


def _mask(layout: OpticalLayout, **changes) -> MaskFile:
    shape = (layout.fourier_rows, layout.fourier_cols)
    fields = dict(
        phase_rad=np.zeros(shape), gray=np.zeros(shape, np.uint16), method="optics-aware", layout=layout,
        model={"kind": "optics_aware", "checkpoint": "x", "sha256": "0" * 64}, slm={}, calibration={"slm_phase": "linear"},
    )
    fields.update(changes)
    return MaskFile(**fields)


def test_mask_file_round_trips_and_is_never_overwritten(tmp_path: Path) -> None:
    layout = _layout()
    phase = np.random.default_rng(1).uniform(0, 2 * np.pi, (layout.fourier_rows, layout.fourier_cols))
    m = _mask(layout, phase_rad=phase, gray=(phase / (2 * np.pi) * 255).astype(np.uint16))
    path = m.save(tmp_path / "m.h5")
    back = MaskFile.load(path)
    np.testing.assert_allclose(back.phase_rad, phase, atol=1e-6)
    assert np.array_equal(back.gray, m.gray) and back.layout == layout and back.method == "optics-aware"
    with pytest.raises(MaskFileError, match="exists"):
        m.save(path)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda shape: {"phase_rad": np.full(shape, np.nan)}, "NaN"),
        (lambda shape: {"phase_rad": np.zeros((3, 3))}, "shape"),
        (lambda shape: {"gray": np.full(shape, 70000, np.int64)}, "gray levels outside"),
        (lambda shape: {"method": "magic"}, "unknown mask method"),
    ],
)
def test_malformed_masks_are_refused(change, message) -> None:
    layout = _layout()
    with pytest.raises(MaskFileError, match=message):
        _mask(layout, **change((layout.fourier_rows, layout.fourier_cols)))


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t.replace("rows = 128\ncols = 128", "rows = 64\ncols = 64"), "Fourier SLM is 64x64"),
        (lambda t: t.replace("rows = 100\ncols = 100", "rows = 90\ncols = 90"), "input modulator is 90x90"),
        (lambda t: t.replace("rows = 120\ncols = 120", "rows = 110\ncols = 110"), "camera is 110x110"),
        (lambda t: t.replace("wavelength_m = 532e-9", "wavelength_m = 633e-9"), "wavelength"),
    ],
)
def test_mask_for_another_bench_is_refused_before_showing(edit, message) -> None:
    m = _mask(_layout())
    spec = BenchSpec.from_toml(bench_toml())
    with spec.open() as bench:
        m.check_bench(BenchDescription.of(bench), bench.fourier_slm.phase_table)  # made for this bench: fine
    other = BenchSpec.from_toml(edit(bench_toml()))
    with other.open() as bench:
        with pytest.raises(MaskFileError, match=message):
            m.check_bench(BenchDescription.of(bench), bench.fourier_slm.phase_table)
        assert bench.fourier_slm.frame_count == 0 and bench.input_slm.frame_count == 0


def test_mask_made_with_another_phase_table_is_refused(small_bench) -> None:
    m = _mask(_layout(), calibration={"slm_phase": "cal-123"})
    with pytest.raises(MaskFileError, match="phase table 'cal-123'"):
        m.check_bench(BenchDescription.of(small_bench), small_bench.fourier_slm.phase_table)


def test_unreadable_mask_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"nope")
    with pytest.raises(MaskFileError, match="bad.h5"):
        MaskFile.load(bad)
    with pytest.raises(MaskFileError, match="no mask file"):
        MaskFile.load(tmp_path / "missing.h5")


def test_double_phase_clipped_to_a_percentile_encodes_the_clipped_mask() -> None:
    """Scaled to the 80th percentile of the amplitudes: the wanted term carries more of the light,
    and the pairs average to the mask with its top fifth clipped to unit amplitude."""
    rng = np.random.default_rng(1)
    mask = rng.normal(size=(16, 16)) + 1j * rng.normal(size=(16, 16))  # a sum of many ramped filters looks like this
    phase, scale = double_phase(mask, clip_percentile=80)
    assert scale == pytest.approx(np.percentile(np.abs(mask), 80))
    clipped = np.minimum(np.abs(mask) / scale, 1.0) * np.exp(1j * np.angle(mask))
    partner = np.exp(1j * (2 * np.angle(mask) - phase))
    np.testing.assert_allclose(0.5 * (np.exp(1j * phase) + partner), clipped, atol=1e-9)
    assert np.mean(np.abs(clipped) ** 2) > 1.5 * np.mean(np.abs(mask / np.abs(mask).max()) ** 2)
    with pytest.raises(EncodingError, match=r"clip_percentile must be within \(0, 100\]; got 0"):
        double_phase(mask, clip_percentile=0)
