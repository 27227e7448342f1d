"""Checks on real hardware. Skipped unless LABCTL_HARDWARE_BENCH names a bench file of attached devices.

Run on the bench PC: ``LABCTL_HARDWARE_BENCH=bench.toml pytest -m hardware``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from drivers.bench import BenchSpec

pytestmark = pytest.mark.hardware
BENCH_FILE = os.environ.get("LABCTL_HARDWARE_BENCH")


@pytest.fixture
def bench():
    if not BENCH_FILE:
        pytest.skip("no hardware attached (set LABCTL_HARDWARE_BENCH to a bench file)")
    with BenchSpec.from_file(BENCH_FILE).open() as b:
        yield b


def test_real_bench_shows_a_pattern_and_captures(bench) -> None:
    slm = bench.fourier_slm
    slm.write_phase(np.zeros(slm.grid.shape))
    frame = bench.camera.capture(timeout_s=5)
    assert frame.data.shape == bench.camera.grid.shape


def test_real_camera_frames_are_numbered_in_order(bench) -> None:
    first = bench.camera.capture(timeout_s=5)
    second = bench.camera.capture(timeout_s=5)
    assert second.frame_number == first.frame_number + 1
