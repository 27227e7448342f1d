"""The guard band between camera tiles: a kernel of the SCLC student reaching h image pixels spills h
pixels past its tile's image footprint; the layout keeps every other footprint at least that far and
refuses one that does not, with the numbers."""

from __future__ import annotations

import itertools

import pytest

from drivers.bench import BenchSpec
from labctl.models.bench_layout import layout_for_bench
from labctl.optics.layout import LayoutError, OpticalLayout, guard_for_kernel

EMBEDDED = BenchSpec.default()
_NUMBER_KEYS = ("wavelength_m", "f1_m", "f2_m", "fourier_rows", "fourier_cols", "fourier_pitch_m", "fourier_bit_depth",
                "input_rows", "input_cols", "input_pitch_m", "camera_rows", "camera_cols", "camera_pitch_m")


def _gaps_camera_px(layout: OpticalLayout) -> list[float]:
    return [max(abs(a[0] - b[0]), abs(a[1] - b[1])) - layout.footprint_px for a, b in itertools.combinations(layout.tiles, 2)]


def test_guard_for_kernel_is_its_reach_plus_one_pixel() -> None:
    assert [guard_for_kernel(k) for k in (1, 5, 9, 28)] == [1, 3, 5, 15]
    with pytest.raises(LayoutError, match="at least 1 px"):
        guard_for_kernel(0)


@pytest.mark.parametrize("guard", [0, 5, 15, 30])
def test_tiled_layout_keeps_every_footprint_a_guard_band_apart(guard: int) -> None:
    layout = layout_for_bench(EMBEDDED, 28, 32, guard_image_px=guard)
    assert layout.guard_image_px == guard
    assert min(_gaps_camera_px(layout)) >= guard * layout.camera_px_per_image_px - 1e-9
    assert OpticalLayout.from_dict(layout.to_dict()) == layout  # stored and read back with its guard band


def test_a_wider_guard_band_fits_fewer_tiles_per_frame() -> None:
    """The embedded bench: 25 tiles of 48 px hold a 32-px footprint with 15.7 px between footprints,
    13 image px (1.15 camera px each); a 15-px guard band (a 28-px kernel) needs 4 x 4 tiles of 60 px."""
    tiles = [len(layout_for_bench(EMBEDDED, 28, 32, guard_image_px=g).tiles) for g in (0, 5, 13, 15)]
    assert tiles == [25, 25, 25, 16]


def test_a_layout_with_tiles_inside_the_guard_band_is_refused_with_the_numbers() -> None:
    layout = layout_for_bench(EMBEDDED, 28, 25)
    d = layout.to_dict()
    with pytest.raises(LayoutError, match=r"tiles at camera \(3, 3\) and \(3, 51\): their 32.3-px image footprints are "
                                          r"15.7 camera px apart, closer than the guard band of 14 image px \(16.2 camera px at 1x\)"):
        OpticalLayout.from_dict({**d, "guard_image_px": 14})
    OpticalLayout.from_dict({**d, "guard_image_px": 13})  # 15.0 camera px: holds
    with pytest.raises(LayoutError, match="guard band must be >= 0"):
        OpticalLayout.from_dict({**d, "guard_image_px": -1})
    one = layout_for_bench(EMBEDDED, 28, 1, guard_image_px=200)  # a single tile has no neighbour to guard against
    assert len(one.tiles) == 1


def test_layouts_stored_before_the_guard_band_still_load() -> None:
    d = layout_for_bench(EMBEDDED, 28, 32).to_dict()
    d.pop("guard_image_px")
    assert OpticalLayout.from_dict(d).guard_image_px == 0


@pytest.mark.parametrize("leak", [-0.01, 1.0, float("nan")])
def test_a_layout_refuses_an_input_leak_no_modulator_has(leak: float) -> None:
    d = layout_for_bench(EMBEDDED, 28, 4).to_dict()
    with pytest.raises(LayoutError, match=r"input modulator's leak must be within \[0, 1\)"):
        OpticalLayout.from_dict({**d, "input_leak": leak})
    d.pop("input_leak")  # stored before the leak was measured: none
    assert OpticalLayout.from_dict(d).input_leak == 0.0
