"""The input modulator's amplitude table (drivers/amplitude_table.py): its validation, write_amplitude
through it, the bench session installing an input-response record's table (and refusing another
device's), and on the lab bench's DMD: the measured table brings the delivered amplitude to the
requested one, where the linear mapping shows √amplitude."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from calibration.active import amplitude_table_from_record
from calibration.errors import CalibrationMismatch, CalibrationRecordError
from calibration.records import CalibrationRecord, load_record
from calibration.run import write_bench_file
from calibration.session import open_session
from drivers.amplitude_table import AmplitudeTable
from drivers.bench import BenchSpec
from drivers.device import DeviceInfo
from drivers.errors import AmplitudeTableError, InvalidPattern, InvalidSetting
from labctl.models.bench_layout import layout_for_bench
from labctl.runner.bench_calibration import BenchCalibration, MissingCalibrationWarning
from tests.conftest import bench_toml

ROOT = Path(__file__).resolve().parents[1]
INPUT = DeviceInfo("mock", "labctl", "SimAmplitudeSLM", "SIM-input-1")
#: a DMD-like inverse: the gray of intensity a², on 256 amplitude targets
SQUARE = np.rint(255 * np.linspace(0, 1, 256) ** 2)


@pytest.mark.parametrize(
    "gray, bit_depth, message",
    [
        (np.zeros((4, 4)), 8, r"shape \(K,\)"),
        (np.array([3]), 8, r"K >= 2"),
        (np.array([0.0, np.nan, 255.0]), 8, "1 NaN/inf"),
        (np.array([0.0, 10.5, 255.0]), 8, "not whole numbers"),
        (np.array([0, 128, 256]), 8, r"outside 0\.\.255 \(8-bit\): min 0, max 256"),
        (np.array([-1, 128, 255]), 8, r"outside 0\.\.255"),
        (np.array([0, 200, 150, 255]), 8, "not monotone: gray falls from 200 to 150 between amplitude targets 1 and 2"),
        (np.array([7, 7, 7]), 8, "gray 7 for every amplitude"),
        (np.array([0, 255]), 0, "bit depth must be an integer in 1..16"),
        (np.array(["a", "b"]), 8, "real gray levels"),
    ],
)
def test_table_refuses_what_no_modulator_can_show(gray, bit_depth, message) -> None:
    with pytest.raises(AmplitudeTableError, match=message):
        AmplitudeTable(gray=gray, bit_depth=bit_depth, record_id="bad")


def test_linear_table_keeps_the_old_mapping_and_a_square_law_table_interpolates() -> None:
    amp = np.random.default_rng(0).random((3, 40, 50))
    np.testing.assert_array_equal(AmplitudeTable.linear(8).gray_for_amplitude(amp), np.rint(amp * 255))
    table = AmplitudeTable(SQUARE, 8, "dmd")
    big = np.random.default_rng(1).random(3 * 2**16 + 5)  # more than one conversion step
    np.testing.assert_array_equal(table.gray_for_amplitude(big), np.rint(np.interp(big * 255, np.arange(256), SQUARE)))
    assert table.gray_for_amplitude(np.array([0.0, 0.5, 1.0])).tolist() == [0, 64, 255]


def test_write_amplitude_shows_the_gray_levels_of_the_active_table() -> None:
    with BenchSpec.from_toml(bench_toml()).open() as bench:
        inp = bench.input_slm
        with pytest.raises(InvalidSetting, match="10-bit gray levels; device is 8-bit"):
            inp.amplitude_table = AmplitudeTable.linear(10)
        amp = np.broadcast_to(np.linspace(0, 1, inp.grid.cols), inp.grid.shape).copy()
        inp.write_amplitude(amp)
        np.testing.assert_array_equal(inp.shown_gray, np.rint(amp * 255))
        inp.amplitude_table = AmplitudeTable(SQUARE, 8, "dmd")
        inp.write_amplitude(amp)
        np.testing.assert_array_equal(inp.shown_gray, np.rint(np.interp(amp * 255, np.arange(256), SQUARE)))
        assert np.abs(inp.shown_gray - 255 * amp**2).max() <= 1.0  # intensity a²: the DMD's gray
        shown = inp.frame_count
        with pytest.raises(InvalidPattern, match=r"outside \[0, 1\]"):
            inp.write_amplitude(amp * 1.5)  # refused by the base class before the table or the device
        assert inp.frame_count == shown


def _input_record(device: DeviceInfo = INPUT, table: np.ndarray = SQUARE) -> CalibrationRecord:
    return CalibrationRecord(
        kind="input_response", device=device, wavelength_m=532e-9, method="test",
        params={"model": "intensity linear in gray (binary mirrors, PWM)", "leak_amplitude": 0.0, "leak_adds": True}, residuals={},
        arrays={"gray": np.arange(0, 256, 17), "amplitude": np.sqrt(np.arange(256) / 255),
                "table_gray": table.astype(np.uint16)},
    )


def test_session_installs_the_input_response_table_and_names_it(tmp_path) -> None:
    src = tmp_path / "bench.toml"
    src.write_text(bench_toml())
    record = _input_record()
    bench_file = write_bench_file(BenchSpec.from_file(src), tmp_path / "cal" / "bench.toml",
                                  {"input_response": record.save(tmp_path / "records")})
    with open_session(BenchSpec.from_file(bench_file)) as session:
        inp = session.bench.input_slm
        assert inp.amplitude_table.record_id == record.id
        assert session.record_ids["input_response"] == record.id == session.description.calibration["input_response"]
        inp.write_amplitude(np.full(inp.grid.shape, 0.5))
        assert (inp.shown_gray == 64).all()
        with pytest.warns(MissingCalibrationWarning) as caught:
            calib = BenchCalibration.for_session(session, layout_for_bench(session.spec, 8, 1))
        assert "input" not in calib.missing and "input" not in str(caught[0].message)
    with open_session(BenchSpec.from_file(src)) as session:  # no record: linear, and the warning says so
        assert session.bench.input_slm.amplitude_table.record_id == "linear" and session.record_ids["input_response"] is None
        with pytest.warns(MissingCalibrationWarning, match=r"no registration, camera, slm, input calibration"):
            calib = BenchCalibration.for_session(session, layout_for_bench(session.spec, 8, 1))
        assert calib.missing[-1] == "input"


def test_session_refuses_another_modulators_record_unless_forced(tmp_path) -> None:
    src = tmp_path / "bench.toml"
    src.write_text(bench_toml())
    foreign = _input_record(DeviceInfo("mock", "labctl", "SimAmplitudeSLM", "OTHER"))
    bench_file = write_bench_file(BenchSpec.from_file(src), tmp_path / "bad" / "bench.toml",
                                  {"input_response": foreign.save(tmp_path / "foreign")})
    with pytest.raises(CalibrationMismatch, match="another device"):
        with open_session(BenchSpec.from_file(bench_file)):
            pass
    with open_session(BenchSpec.from_file(bench_file), force=True) as session:
        assert session.bench.input_slm.amplitude_table.record_id == foreign.id


def test_records_that_cannot_make_a_table_are_refused_clearly(tmp_path) -> None:
    falling = _input_record(table=SQUARE[::-1])
    with pytest.raises(CalibrationRecordError, match=f"input-response record {falling.id}: .* not monotone"):
        amplitude_table_from_record(falling)
    odd = _input_record()
    odd.arrays["amplitude"] = odd.arrays["amplitude"][:200]
    with pytest.raises(CalibrationRecordError, match="200 measured amplitudes"):
        amplitude_table_from_record(odd)
    for leak, message in (("dim", "leak_amplitude 'dim' is not a number"), (1.5, r"leak must be within \[0, 1\)")):
        bad = _input_record()
        bad.params["leak_amplitude"] = leak
        with pytest.raises(CalibrationRecordError, match=message):
            amplitude_table_from_record(bad)
    with pytest.raises(CalibrationRecordError, match="not an input-response calibration"):
        amplitude_table_from_record(CalibrationRecord(kind="camera", device=INPUT, wavelength_m=532e-9, method="t",
                                                      params={}, residuals={}))


def _lab(modulator: str) -> dict:
    lab = tomllib.loads((ROOT / "mock_hw" / "lab_bench.toml").read_text())
    realism = {k: v for k, v in lab["input_slm"]["realism"].items() if k != "pwm_period_s" or modulator == "dmd"}
    lab["input_slm"]["realism"] = {**realism, "modulator": modulator}
    return lab


def test_the_measured_table_delivers_the_requested_amplitude_on_an_lc_modulator(tmp_path, one_torch_thread) -> None:
    from calibration.input_response import InputResponseSettings
    from calibration.run import calibrate_input

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import calibration_accuracy as accuracy
    from input_amplitude import delivered_field

    requested = np.linspace(0, 1, 41)
    settings = InputResponseSettings(levels=17, frames_each=1)
    with accuracy.bench_for_seed(_lab("lc"), 1).open() as bench:
        inp = bench.input_slm
        linear = delivered_field(bench, inp.amplitude_table.gray_for_amplitude(requested))
        first = load_record(calibrate_input(bench, tmp_path / "a", settings=settings))
        assert inp.amplitude_table.record_id == first.id  # applied on the bench it was measured on
        inp.write_amplitude(np.full(inp.grid.shape, 0.5))
        assert (inp.shown_gray == inp.amplitude_table.gray_for_amplitude(np.array(0.5))).all()
        calibrated = delivered_field(bench, inp.amplitude_table.gray_for_amplitude(requested))
        # measured again with the table active: still the raw response, not the one through the table
        again = load_record(calibrate_input(bench, tmp_path / "b", settings=settings))
        gray = first.arrays["gray"]
        true_intensity = delivered_field(bench, gray) ** 2
        # what a sweep shown through the first table would have read: amplitude g/(L−1) → the table's gray
        through_table = delivered_field(bench, amplitude_table_from_record(first).gray_for_amplitude(gray / 255)) ** 2
    rms_linear = float(np.sqrt(np.mean((linear - requested) ** 2)))  # measured 0.14 (seed 1)
    rms_calibrated = float(np.sqrt(np.mean((calibrated - requested) ** 2)))  # measured 0.009
    assert rms_linear > 0.1 and rms_calibrated < 0.3 * rms_linear, (rms_linear, rms_calibrated)

    def off(intensity: np.ndarray) -> float:
        return float(np.sqrt(np.mean((intensity - true_intensity) ** 2)))

    raw, shown = off(again.arrays["relative_intensity"]), off(through_table)
    assert raw < 0.01 and shown > 0.05, (raw, shown)


def test_a_dmds_table_inverts_its_mean_field_and_stays_near_linear(tmp_path, one_torch_thread) -> None:
    """Binary mirrors' field averaged over the exposure is linear in gray, as their intensity is: the
    table corrects the leak and the measurement's partial PWM periods, and is no √ law (which lost
    3.6 points through the lab bench; calibration/input_response.py)."""
    from calibration.input_response import BINARY_PWM, InputResponseSettings
    from calibration.run import calibrate_input

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import calibration_accuracy as accuracy
    from input_amplitude import delivered_field

    requested = np.linspace(0, 1, 41)
    with accuracy.bench_for_seed(_lab("dmd"), 1).open() as bench:
        record = load_record(calibrate_input(bench, tmp_path, settings=InputResponseSettings(levels=17, frames_each=2)))
        gray = bench.input_slm.amplitude_table.gray_for_amplitude(requested)
        delivered = delivered_field(bench, gray)
        leak = float(delivered_field(bench, np.array([0]))[0])  # an off mirror's field over an on one's
    assert record.params["model"] == BINARY_PWM
    # the dark field, not its intensity; and under every level, as the delivered field shows
    assert abs(record.params["leak_amplitude"] - leak) < 0.25 * leak and record.params["leak_adds"], (record.params, leak)
    assert abs(float(delivered[20]) - (leak + (1 - leak) * requested[20])) < 0.02
    np.testing.assert_allclose(record.arrays["field"], record.arrays["amplitude"] ** 2)
    assert np.sqrt(np.mean((delivered - requested) ** 2)) < 0.05
    assert np.abs(gray - 255 * requested).max() < 32  # a √ law's table: 255·a², 64 levels off at a = 0.5


def test_the_measured_leak_of_dark_pixels_reaches_the_layout(tmp_path, one_torch_thread) -> None:
    """The input response measures a dark pixel's field over the block's image (the whole frame would
    add the dark surroundings' leak, 2.5x the true one on the embedded bench): within 10 % of the
    hidden leak; its table and the bench's layout carry it, so the twin adds it; a record made before
    the measurement (no ``leak_amplitude``) means no leak."""
    from calibration.active import UnmeasuredLeakWarning
    from calibration.input_response import InputResponseSettings
    from calibration.run import calibrate_input
    from mock_hw.truth import reveal_truth

    src = tmp_path / "bench.toml"
    src.write_text(bench_toml())
    with BenchSpec.from_file(src).open() as bench:
        path = calibrate_input(bench, tmp_path / "records", settings=InputResponseSettings(levels=9, frames_each=2))
        leak = reveal_truth(bench.input_slm).leak_amplitude
    record = load_record(path)
    measured = record.params["leak_amplitude"]
    assert abs(measured - leak) < 0.1 * leak, (measured, leak)
    assert record.params["leak_adds"] is False  # an analog modulator's table shows max(a, leak)
    assert amplitude_table_from_record(record).leak_amplitude == measured
    bench_file = write_bench_file(BenchSpec.from_file(src), tmp_path / "cal" / "bench.toml", {"input_response": path})
    assert layout_for_bench(BenchSpec.from_file(bench_file), 16, 4).input_leak == measured
    older = CalibrationRecord(kind=record.kind, device=record.device, wavelength_m=record.wavelength_m, method=record.method,
                              params={k: v for k, v in record.params.items() if k != "leak_amplitude"},
                              residuals=record.residuals, arrays=record.arrays)
    with pytest.warns(UnmeasuredLeakWarning, match="predates"):
        assert amplitude_table_from_record(older).leak_amplitude == 0.0
    with pytest.raises(AmplitudeTableError, match="leak"):
        AmplitudeTable(gray=np.arange(256), bit_depth=8, leak_amplitude=float("nan"))
