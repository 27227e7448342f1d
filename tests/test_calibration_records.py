"""Calibration records: file format, refusal for another device or wavelength, bench-file activation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from calibration.active import active_records, phase_table_from_record
from calibration.session import open_session
from calibration.errors import CalibrationMismatch, CalibrationRecordError
from calibration.records import CalibrationRecord, load_record
from calibration.run import write_bench_file
from drivers.bench import BenchSpec
from drivers.device import DeviceInfo
from tests.conftest import bench_toml

SLM = DeviceInfo("mock", "labctl", "SimPhaseSLM", "SIM-fourier-2")


def _phase_record(device: DeviceInfo = SLM, wavelength_m: float = 532e-9) -> CalibrationRecord:
    gray = (np.arange(1024) * 200 // 1024).astype(np.uint16)
    return CalibrationRecord(
        kind="slm_phase", device=device, wavelength_m=wavelength_m, method="test",
        params={"bit_depth": 8}, residuals={"phase_fit_rms_rad": 0.01}, arrays={"table_gray": gray},
    )


def test_record_round_trip_keeps_identity_params_and_arrays(tmp_path) -> None:
    rec = _phase_record()
    path = rec.save(tmp_path)
    doc = json.loads(path.read_text())
    assert doc["device"]["serial"] == "SIM-fourier-2" and doc["software"]["labctl"] and doc["created"]
    back = load_record(path, device=SLM, wavelength_m=532e-9)
    assert back.id == rec.id and back.kind == "slm_phase" and back.params == {"bit_depth": 8}
    np.testing.assert_array_equal(back.arrays["table_gray"], rec.arrays["table_gray"])
    table = phase_table_from_record(back)
    assert table.record_id == rec.id and table.gray.shape == (1024,)


def test_record_for_another_device_or_wavelength_is_refused_unless_forced(tmp_path) -> None:
    path = _phase_record().save(tmp_path)
    other = DeviceInfo("mock", "labctl", "SimPhaseSLM", "SIM-fourier-9")
    with pytest.raises(CalibrationMismatch, match=r"another device \(serial 'SIM-fourier-2' vs device 'SIM-fourier-9'\)"):
        load_record(path, device=other)
    with pytest.raises(CalibrationMismatch, match="made at 532.0 nm, the bench runs at 633.0 nm"):
        load_record(path, wavelength_m=633e-9)
    assert load_record(path, device=other, wavelength_m=633e-9, force=True).id


def test_bad_record_files_name_the_file(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CalibrationRecordError, match="bad.json: not valid JSON"):
        load_record(bad)
    bad.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(CalibrationRecordError, match="not a labctl-calibration/1 file"):
        load_record(bad)
    with pytest.raises(CalibrationRecordError, match="cannot read"):
        load_record(tmp_path / "missing.json")


def test_bench_file_activates_the_phase_table_and_refuses_a_foreign_one(tmp_path) -> None:
    src = tmp_path / "bench.toml"
    src.write_text(bench_toml())
    good = _phase_record().save(tmp_path / "records")
    bench_file = write_bench_file(BenchSpec.from_file(src), tmp_path / "out" / "bench.toml", {"slm_phase": good})
    assert "[calibration]" in bench_file.read_text()
    spec = BenchSpec.from_file(bench_file)
    with spec.open() as bench:  # the devices alone come up uncalibrated
        assert bench.fourier_slm.phase_table.record_id == "linear"
    with open_session(spec) as session:
        bench = session.bench
        assert bench.fourier_slm.phase_table.record_id == load_record(good).id
        bench.fourier_slm.write_phase(np.full(bench.fourier_slm.grid.shape, np.pi))
        assert int(bench.fourier_slm.shown_gray[0, 0]) == 100  # table: 2π·k/1024 → 200·k/1024
        active = active_records(spec, bench)
        assert active.slm_phase is not None and active.camera is None and active.registration is None
    foreign = _phase_record(DeviceInfo("mock", "labctl", "SimPhaseSLM", "OTHER")).save(tmp_path / "foreign")
    bad_file = write_bench_file(BenchSpec.from_file(src), tmp_path / "bad" / "bench.toml", {"slm_phase": foreign})
    with pytest.raises(CalibrationMismatch, match="another device"):
        with open_session(BenchSpec.from_file(bad_file)):
            pass
