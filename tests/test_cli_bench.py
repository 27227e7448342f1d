"""`labctl bench check` and the top-level help, through the CLI as an operator runs them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from click.testing import CliRunner

from labctl.cli import main
from tests.conftest import bench_toml


def test_help_lists_commands() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "bench" in result.output


def test_bench_check_on_a_bench_file_saves_a_frame(tmp_path: Path) -> None:
    bench_file = tmp_path / "bench.toml"
    bench_file.write_text(bench_toml())
    result = CliRunner().invoke(main, ["bench", "check", "--bench", str(bench_file), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "fourier_slm" in result.output and "SimCam" in result.output
    assert "bench check passed" in result.output
    frame = np.load(tmp_path / "out" / "frame.npy")
    assert frame.shape == (120, 120) and frame.max() > frame.min()
    assert (tmp_path / "out" / "frame.png").stat().st_size > 1000


def test_bench_check_with_unknown_driver_fails_cleanly(tmp_path: Path) -> None:
    bench_file = tmp_path / "bench.toml"
    bench_file.write_text(bench_toml().replace('[camera]\ndriver = "mock"', '[camera]\ndriver = "nope"'))
    result = CliRunner().invoke(main, ["bench", "check", "--bench", str(bench_file)])
    assert result.exit_code == 1
    assert "no camera driver named 'nope'" in result.output
    assert "Traceback" not in result.output


SLMSUITE_BENCH = """
[optics]
wavelength_m = 532e-9

[input_slm]
driver = "slmsuite"
settings = { resolution = [64, 48], pitch_um = [8, 8], wav_um = 0.532 }

[fourier_slm]
driver = "slmsuite"
settings = { resolution = [64, 48], pitch_um = [8, 8], wav_um = 0.532 }

[camera]
driver = "slmsuite"
settings = { pitch_um = [5, 5] }
exposure_limits_s = [1e-4, 2.0]
"""


def test_bench_check_on_slmsuite_simulated_slm_and_camera(tmp_path: Path) -> None:
    """The camera's bit depth is read after the bench is closed: the closed-device contract."""
    bench_file = tmp_path / "bench.toml"
    bench_file.write_text(SLMSUITE_BENCH)
    result = CliRunner().invoke(main, ["bench", "check", "--bench", str(bench_file), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "bench check passed" in result.output and "slmsuite" in result.output
    assert np.load(tmp_path / "out" / "frame.npy").ndim == 2
