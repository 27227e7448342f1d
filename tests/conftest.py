"""Fixtures shared across the suite: small simulated benches built from bench-file text."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from drivers.bench import Bench, BenchSpec


def bench_toml(*, ideal: bool = False, noise: bool = True, extra_camera: str = "", seeds: tuple[int, int, int] = (1, 2, 3)) -> str:
    """Bench-file text for a small, fast simulated bench (128-pixel Fourier SLM)."""
    flag = "true" if ideal else "false"
    return f"""
[optics]
wavelength_m = 532e-9
f1_m = 0.05
f2_m = 0.05

[input_slm]
driver = "mock"
seed = {seeds[0]}
rows = 100
cols = 100
pitch_m = 15e-6
ideal = {flag}

[fourier_slm]
driver = "mock"
seed = {seeds[1]}
rows = 128
cols = 128
pitch_m = 16e-6
ideal = {flag}

[camera]
driver = "mock"
seed = {seeds[2]}
rows = 120
cols = 120
pitch_m = 12e-6
ideal = {flag}
noise = {"true" if noise else "false"}
{extra_camera}

[shutter]
driver = "mock"
"""


@pytest.fixture
def small_bench() -> Iterator[Bench]:
    with BenchSpec.from_toml(bench_toml(), source="<small test bench>").open() as bench:
        yield bench


@pytest.fixture
def ideal_bench() -> Iterator[Bench]:
    """No SLM non-idealities, no noise, no misalignment."""
    with BenchSpec.from_toml(bench_toml(ideal=True, noise=False), source="<ideal test bench>").open() as bench:
        yield bench


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Small tensors: one thread avoids OpenMP oversubscription on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
