"""``labctl devices``: driver listing, and identity + self-test of every device of a bench file."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from drivers.registry import DeviceKind, driver_names
from drivers.sim import serial_bus
from labctl.cli import main

BENCH = """
[input_slm]
driver = "mock"
rows = 32
cols = 32
[fourier_slm]
driver = "mock"
rows = 32
cols = 32
[camera]
driver = "mock"
rows = 32
cols = 32
[shutter]
driver = "serial_shutter"
port = "labsim://sc10/cli"
[power_meter]
driver = "visa_power_meter"
resource = "USB0::0x1313::0x8072::P2001234::INSTR"
sim = true
wavelength_m = 532e-9
"""


def test_devices_lists_every_registered_driver() -> None:
    result = CliRunner().invoke(main, ["devices"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for kind in DeviceKind:
        for name in driver_names(kind):
            assert name in result.output
    assert {"slmsuite", "harvesters", "opencv"} <= set(driver_names(DeviceKind.CAMERA))


def test_devices_opens_a_bench_and_self_tests_each_device(tmp_path: Path) -> None:
    bench = tmp_path / "bench.toml"
    bench.write_text(BENCH)
    result = CliRunner().invoke(main, ["devices", "--bench", str(bench)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "P2001234" in result.output and "1.7.0" in result.output  # power meter serial and firmware
    assert "THORLABS SC10" in result.output and "blocked the beam" in result.output
    assert result.output.count("ok:") == 5
    assert not serial_bus.device("sc10/cli").is_open  # everything closed afterwards


def test_devices_reports_a_device_that_fails(tmp_path: Path) -> None:
    serial_bus.device("sc10/dead").fault = "silent"
    bench = tmp_path / "bench.toml"
    bench.write_text(BENCH.replace("sc10/cli", "sc10/dead").replace('port = "', 'timeout_s = 0.05\nport = "'))
    result = CliRunner().invoke(main, ["devices", "--bench", str(bench)])
    assert result.exit_code != 0
    assert "DeviceTimeout" in result.output and "labsim://sc10/dead" in result.output
    serial_bus.unplug_all()
