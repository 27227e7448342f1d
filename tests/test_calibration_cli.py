"""``labctl calibrate``: records, plots, raw data and a bench file that later commands can open."""

from __future__ import annotations

import numpy as np
from click.testing import CliRunner

from calibration.active import active_records
from calibration.session import open_session
from drivers.bench import BenchSpec
from labctl.cli import main
from tests.conftest import bench_toml


def test_calibrate_all_writes_records_plots_and_a_bench_file(tmp_path) -> None:
    bench_file = tmp_path / "small.toml"
    bench_file.write_text(bench_toml())
    out = tmp_path / "cal"
    result = CliRunner().invoke(main, ["calibrate", "all", "--bench", str(bench_file), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "bench file with these records" in result.output
    assert "dark pixels leak 0.0" in result.output  # the input modulator's leak, told to the operator
    for kind in ("input_response", "slm_phase", "camera", "registration"):
        assert len(list(out.glob(f"{kind}-*.json"))) == 1 and len(list(out.glob(f"{kind}-*.png"))) == 1
        assert (out / "raw" / f"{kind}.npz").is_file()
    spec = BenchSpec.from_file(out / "bench.toml")
    with open_session(spec) as session:
        bench = session.bench
        active = active_records(spec, bench)
        assert bench.fourier_slm.phase_table.record_id == active.slm_phase.id
        assert session.correct_frames is not None and session.input_to_camera.shape == (2, 3)
        assert active.camera is not None and active.registration is not None
        assert np.asarray(active.registration.params["input_to_camera"]).shape == (2, 3)


def test_calibrate_with_the_laser_blocked_fails_cleanly(tmp_path, monkeypatch) -> None:
    bench_file = tmp_path / "small.toml"
    bench_file.write_text(bench_toml())
    monkeypatch.setattr("mock_hw.instruments.MockShutter.beam_open", property(lambda self: False))
    result = CliRunner().invoke(main, ["calibrate", "camera", "--bench", str(bench_file), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0
    assert "EmptyFrames" in result.output and "check the laser" in result.output
    assert "Traceback" not in result.output
