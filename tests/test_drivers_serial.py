"""Serial instruments against the in-memory ``labsim://`` simulators: exact messages and faults."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from drivers.errors import DeviceBusy, DeviceDisconnected, DeviceError, DeviceNotFound, DeviceTimeout, InvalidSetting
from drivers.obis_laser import ObisLaser
from drivers.serial_shutter import SerialShutter
from drivers.sim import serial_bus


@pytest.fixture(autouse=True)
def clean_bus() -> Iterator[None]:
    serial_bus.unplug_all()
    yield
    serial_bus.unplug_all()


def test_shutter_protocol_sends_exactly_the_sc10_commands() -> None:
    sim = serial_bus.device("sc10")
    with SerialShutter("shutter", "labsim://sc10") as shutter:
        assert shutter.info.model == "THORLABS SC10" and shutter.firmware == "1.07"
        shutter.open_beam()
        assert sim.enabled and shutter.beam_open
        shutter.open_beam()  # already open: no toggle
        shutter.block_beam()
        assert not sim.enabled
    assert sim.transcript == [
        b"id?\r",
        b"ens?\r", b"ens\r", b"ens?\r",  # open: read, toggle, verify
        b"ens?\r",  # beam_open
        b"ens?\r",  # open again: already open
        b"ens?\r", b"ens\r", b"ens?\r",  # block
    ]


def test_laser_protocol_and_power_limits() -> None:
    sim = serial_bus.device("obis")
    with ObisLaser("laser", "labsim://obis", power_w=0.01) as laser:
        assert laser.info.serial == "170311" and laser.info.model.startswith("OBIS")
        laser.open_beam()
        assert sim.emission and laser.beam_open
        assert laser.power_w == pytest.approx(0.01)
        sent = len(sim.transcript)
        with pytest.raises(InvalidSetting, match="outside"):
            laser.power_w = 0.2
        assert len(sim.transcript) == sent  # refused before anything was sent
        laser.block_beam()
    assert sim.transcript == [
        b"*IDN?\r\n", b"SYST:INF:SNUM?\r\n", b"SOUR:POW:LIM:HIGH?\r\n", b"SOUR:POW:LEV:IMM:AMPL 0.01000\r\n",
        b"SOUR:AM:STAT ON\r\n", b"SOUR:AM:STAT?\r\n", b"SOUR:POW:LEV:IMM:AMPL?\r\n", b"SOUR:AM:STAT OFF\r\n",
    ]


def test_laser_error_reply_is_reported_with_the_code() -> None:
    with ObisLaser("laser", "labsim://obis") as laser:
        with pytest.raises(DeviceError, match="ERR-100"):
            laser.command("SOUR:BOGUS")


def test_stale_input_is_discarded_before_each_command() -> None:
    with SerialShutter("shutter", "labsim://sc10") as shutter:
        port = shutter._link._port
        port._out += b"ens?\r1\r> "  # a stale reply left in the buffer
        assert shutter.beam_open is False


@pytest.mark.parametrize("fault, error, message", [
    ("silent", DeviceTimeout, "no reply"),
    ("short", DeviceTimeout, "cut short"),
    ("write_timeout", DeviceTimeout, "write"),
    ("unplugged", DeviceDisconnected, "reconnect"),
])
def test_faults_mid_command_map_to_our_errors(fault: str, error: type, message: str) -> None:
    sim = serial_bus.device("sc10")
    shutter = SerialShutter("shutter", "labsim://sc10", timeout_s=0.05).open()
    sim.fault = fault
    with pytest.raises(error, match=message) as err:
        shutter.open_beam()
    assert "labsim://sc10" in str(err.value)
    if fault == "unplugged":
        assert not shutter._link.is_open  # no half-open handle
        sim.fault = None
        shutter.reconnect()
        shutter.open_beam()
        assert shutter.beam_open
    shutter.close()
    assert not sim.is_open


def test_exclusive_access_and_missing_port() -> None:
    with SerialShutter("shutter", "labsim://sc10"):
        with pytest.raises(DeviceBusy, match="in use"):
            SerialShutter("shutter2", "labsim://sc10").open()
    serial_bus.device("obis").fault = "unplugged"
    with pytest.raises(DeviceNotFound, match="labsim://obis"):
        ObisLaser("laser", "labsim://obis").open()
    with pytest.raises(DeviceNotFound, match="list_ports"):
        SerialShutter("shutter", "/dev/ttyLABCTL_NONE").open()


def test_failed_identification_leaves_no_open_port() -> None:
    sim = serial_bus.device("sc10")
    sim.fault = "silent"
    with pytest.raises(DeviceTimeout):
        SerialShutter("shutter", "labsim://sc10", timeout_s=0.05).open()
    assert not sim.is_open


def test_reconnect_re_finds_the_port_by_hardware_id(mocker) -> None:
    class Port:
        device = "labsim://sc10/replugged"

    grep = mocker.patch("serial.tools.list_ports.grep", return_value=[Port()])
    shutter = SerialShutter("shutter", "labsim://sc10", hwid="SER=ABC123").open()
    shutter.reconnect()
    grep.assert_called_once_with("SER=ABC123")
    assert shutter.address == "labsim://sc10/replugged" and shutter.beam_open is False
    grep.return_value = []
    with pytest.raises(DeviceNotFound, match="SER=ABC123"):
        shutter.reconnect()
