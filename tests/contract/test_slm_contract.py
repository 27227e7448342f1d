"""The SLM contract (drivers/slm.py), run on every SLM implementation that can run here."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.errors import DeviceBusy, DeviceDisconnected, InvalidPattern, InvalidSetting, UnsupportedFeature
from drivers.phase_table import PhaseTable
from drivers.slm import SLM, SLMRole


def test_description_is_consistent(slm: SLM) -> None:
    g = slm.grid
    assert g.rows > 0 and g.cols > 0 and g.pitch_m > 0
    assert 1 <= slm.bit_depth <= 16 and slm.levels == 2**slm.bit_depth
    assert 300e-9 < slm.wavelength_m < 2e-6
    assert slm.settle_time_s >= 0
    info = slm.info
    assert info.driver and info.model and info.serial


def test_gray_pattern_is_shown_and_counted(slm: SLM) -> None:
    rng = np.random.default_rng(0)
    levels = rng.integers(0, slm.levels, slm.grid.shape, dtype=np.uint16)
    before = slm.frame_count
    slm.write_gray(levels)
    assert slm.frame_count == before + 1
    np.testing.assert_array_equal(slm.shown_gray, levels)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda s: np.zeros((s.grid.rows + 1, s.grid.cols), dtype=np.uint16), "shape"),
        (lambda s: np.zeros(s.grid.shape, dtype=np.float32), "integer"),
        (lambda s: np.full(s.grid.shape, s.levels, dtype=np.int64), "outside"),
        (lambda s: np.full(s.grid.shape, -1, dtype=np.int64), "outside"),
        (lambda s: np.zeros((2, 2, 2, 2), dtype=np.uint16), "2-D"),
    ],
    ids=["shape", "dtype", "too-high", "negative", "ndim"],
)
def test_bad_gray_patterns_are_refused_before_anything_is_shown(slm: SLM, make, message: str) -> None:
    shown = slm.shown_gray.copy()
    count = slm.frame_count
    with pytest.raises(InvalidPattern, match=message) as err:
        slm.write_gray(make(slm))
    assert err.value.device == slm.name
    assert slm.frame_count == count
    np.testing.assert_array_equal(slm.shown_gray, shown)


def test_sequence_longer_than_the_device_holds_is_refused(slm: SLM) -> None:
    stack = np.zeros((slm.sequence_limit + 1, *slm.grid.shape), dtype=np.uint16)
    with pytest.raises(InvalidPattern, match="sequence"):
        slm.write_gray(stack)


def test_role_decides_phase_or_amplitude(slm: SLM) -> None:
    zeros = np.zeros(slm.grid.shape)
    if slm.role is SLMRole.FOURIER:
        with pytest.raises(UnsupportedFeature):
            slm.write_amplitude(zeros)
        ramp = np.linspace(0, 4 * np.pi, slm.grid.cols)[None, :].repeat(slm.grid.rows, 0)
        slm.write_phase(ramp)
        np.testing.assert_array_equal(slm.shown_gray, slm.phase_table.gray_for_phase(ramp))
        for bad in (np.nan, np.inf):
            pattern = zeros.copy()
            pattern[0, 0] = bad
            with pytest.raises(InvalidPattern, match="NaN/inf"):
                slm.write_phase(pattern)
    else:
        with pytest.raises(UnsupportedFeature):
            slm.write_phase(zeros)
        slm.write_amplitude(np.ones(slm.grid.shape))
        assert (slm.shown_gray == slm.levels - 1).all()
        with pytest.raises(InvalidPattern, match=r"outside \[0, 1\]"):
            slm.write_amplitude(np.full(slm.grid.shape, 1.5))


def test_phase_table_must_fit_the_device(slm: SLM) -> None:
    with pytest.raises(InvalidSetting, match="bit"):
        slm.phase_table = PhaseTable.linear(slm.bit_depth + 1)
    table = PhaseTable.linear(slm.bit_depth)
    slm.phase_table = table
    assert slm.phase_table is table


def test_closed_device_answers_its_description_but_refuses_writes(slm: SLM) -> None:
    pattern = np.zeros(slm.grid.shape, dtype=np.uint16)
    info, grid, bit_depth = slm.info, slm.grid, slm.bit_depth
    with pytest.raises(DeviceBusy, match="already open"):
        slm.open()
    slm.close()
    assert not slm.is_open
    assert (slm.info, slm.grid, slm.bit_depth) == (info, grid, bit_depth)
    with pytest.raises(DeviceDisconnected, match="not open"):
        slm.write_gray(pattern)
    slm.close()  # idempotent
    with slm:
        slm.write_gray(pattern)
    assert not slm.is_open
    slm.open()
