"""SCPI power meter against the pyvisa-sim description shipped with the driver."""

from __future__ import annotations

import time

import pytest

from drivers.errors import DeviceDisconnected, DeviceNotFound, DeviceTimeout, InvalidSetting
from drivers.visa_power_meter import VisaPowerMeter

METER = "USB0::0x1313::0x8072::P2001234::INSTR"
SILENT = "USB0::0x1313::0x8072::P2009999::INSTR"


def test_identity_wavelength_and_power() -> None:
    with VisaPowerMeter("power_meter", METER, wavelength_m=532e-9, sim=True) as pm:
        assert (pm.info.vendor, pm.info.model, pm.info.serial, pm.firmware) == ("Thorlabs", "PM100USB", "P2001234", "1.7.0")
        assert pm.wavelength_m == pytest.approx(532e-9)
        assert pm.read_power_w() == pytest.approx(1.25e-6)


def test_every_write_is_followed_by_an_error_queue_check(mocker) -> None:
    pm = VisaPowerMeter("power_meter", METER, sim=True).open()
    write = mocker.spy(pm._inst, "write")
    query = mocker.spy(pm._inst, "query")
    pm.wavelength_m = 780e-9
    assert [c.args[0] for c in write.call_args_list] == ["SENS:CORR:WAV 780.0", "SYST:ERR?"]
    assert [c.args[0] for c in query.call_args_list] == ["SYST:ERR?"]
    pm.close()


def test_refused_setting_surfaces_from_the_error_queue() -> None:
    with VisaPowerMeter("power_meter", METER, sim=True) as pm:
        before = pm.wavelength_m
        with pytest.raises(InvalidSetting, match=r"-222.*SENS:CORR:WAV 2000.0") as err:
            pm.wavelength_m = 2000e-9
        assert "P2001234" in str(err.value)
        assert pm.wavelength_m == before
        pm.check_errors()  # queue drained


def test_no_reply_times_out_within_the_finite_timeout() -> None:
    with VisaPowerMeter("power_meter", SILENT, sim=True, timeout_s=0.1) as pm:
        started = time.monotonic()
        with pytest.raises(DeviceTimeout, match="no reply within 0.1 s"):
            pm.read_power_w(timeout_s=0.1)
        assert time.monotonic() - started < 1.0
        with pytest.raises(InvalidSetting):
            pm.read_power_w(timeout_s=float("inf"))


@pytest.mark.filterwarnings("ignore:read string doesn't end with termination characters")
def test_unknown_resource_and_closed_meter() -> None:
    pm = VisaPowerMeter("power_meter", "USB0::0x1313::0x8072::NOPE::INSTR", sim=True)
    with pytest.raises(DeviceNotFound, match="NOPE"):
        pm.open()
    assert pm._inst is None and pm._rm is None and not pm.is_open
    with pytest.raises(DeviceDisconnected):
        pm.read_power_w()
