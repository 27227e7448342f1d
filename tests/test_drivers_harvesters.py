"""GenICam camera via harvesters: end to end on the genicam wheel's viky.cti; error paths with pytest-mock."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from drivers.errors import DeviceBusy, DeviceNotFound, DeviceTimeout, UnsupportedFeature
from drivers.harvesters_camera import HarvestersCamera
from labctl.cli import main
from tests.contract.conftest import viky_cti

CTI = viky_cti()
pytestmark = pytest.mark.skipif(CTI is None, reason="genicam>=1.6 with viky.cti is not installed")


def test_bench_check_runs_on_the_viky_producer(tmp_path: Path) -> None:
    bench = tmp_path / "viky_bench.toml"
    bench.write_text(
        '[input_slm]\ndriver = "mock"\nrows = 64\ncols = 64\n\n[fourier_slm]\ndriver = "mock"\nrows = 64\ncols = 64\n\n'
        f'[camera]\ndriver = "harvesters"\ncti = "{CTI}"\nserial = "0"\n'
    )
    result = CliRunner().invoke(main, ["bench", "check", "--bench", str(bench), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "harvesters" in result.output and "Viky" in result.output and "bench check passed" in result.output
    assert (tmp_path / "out" / "frame.png").is_file()


def test_opens_by_serial_or_index_with_roi_and_format() -> None:
    with HarvestersCamera("camera", cti=CTI, serial="2", roi=[0, 0, 160, 120], pixel_format="Mono8") as cam:
        assert cam.info.serial == "2" and cam.info.model == "Viky" and cam.firmware == "1.0"
        frame = cam.capture()
        assert frame.data.shape == (120, 160) and frame.data.dtype.name == "uint8"
        assert cam.gain_limits is None  # viky has no Gain: the feature is optional
    with HarvestersCamera("camera", cti=CTI, index=1) as cam:
        assert cam.info.serial == "1"


def test_missing_producer_and_unknown_serial_name_what_to_try(tmp_path: Path) -> None:
    with pytest.raises(DeviceNotFound, match=r"nowhere\.cti not found.*cti ="):
        HarvestersCamera("camera", cti=str(tmp_path / "nowhere.cti")).open()
    with pytest.raises(DeviceNotFound, match=r"serial '7'.*found serial '0'"):
        HarvestersCamera("camera", cti=CTI, serial="7").open()
    with pytest.raises(UnsupportedFeature, match="Mono16"):
        HarvestersCamera("camera", cti=CTI, pixel_format="Mono16").open()


def _vendor_error(name: str) -> Exception:
    return type(name, (Exception,), {})("GenTL exception (simulated)")


def test_device_in_use_is_busy_and_nothing_stays_open(mocker) -> None:
    from harvesters.core import Harvester

    mocker.patch.object(Harvester, "create", side_effect=_vendor_error("ResourceInUseException"))
    reset = mocker.spy(Harvester, "reset")
    cam = HarvestersCamera("camera", cti=CTI, serial="0")
    with pytest.raises(DeviceBusy, match="close the other program"):
        cam.open()
    assert reset.call_count == 1 and cam._harvester is None and cam._ia is None and not cam.is_open


def test_fetch_timeout_maps_to_device_timeout_and_reconnect_recovers(mocker) -> None:
    with HarvestersCamera("camera", cti=CTI, serial="0", roi=[0, 0, 100, 100], fetch_timeout_s=0.2) as cam:
        mocker.patch.object(type(cam._ia), "fetch", side_effect=_vendor_error("TimeoutException"))
        with pytest.raises(DeviceTimeout, match="fetching a frame.*serial '0'"):
            cam.capture()
        mocker.stopall()
        cam.reconnect()
        assert cam.capture().frame_number == 0


def test_start_failure_destroys_the_acquirer(mocker) -> None:
    from harvesters.core import ImageAcquirer

    mocker.patch.object(ImageAcquirer, "start", side_effect=_vendor_error("IoException"))
    destroy = mocker.spy(ImageAcquirer, "destroy")
    cam = HarvestersCamera("camera", cti=CTI, serial="0")
    with pytest.raises(Exception, match="starting acquisition"):
        cam.open()
    assert destroy.call_count >= 1 and cam._ia is None and cam._harvester is None
    mocker.stopall()
    with cam:  # the device was released: it opens again
        assert cam.capture().data.size > 0
