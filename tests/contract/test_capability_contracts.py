"""One contract suite per optional capability (drivers/capabilities.py), run on every driver here
that claims it; and the contracts of the instruments (shutter, power meter)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivers.camera import Camera
from drivers.capabilities import FirmwareIdentity, FrameBuffer, HardwareSequence, PatternReadback, ReadoutTime, firmware, readout_s
from drivers.errors import DeviceBusy, DeviceDisconnected, InvalidPattern, InvalidSetting
from drivers.instruments import PowerMeter, Shutter
from drivers.slm import SLM

#: what each driver class here claims; a capability lost (or gained) by accident fails this table
CLAIMS = {
    "MockSLM": {HardwareSequence, PatternReadback},
    "SlmsuiteSLM": {PatternReadback},
    "MockCamera": {FrameBuffer, ReadoutTime},
    "SlmsuiteCamera": {FrameBuffer},
    "HarvestersCamera": {FrameBuffer, FirmwareIdentity},
    "OpenCVCamera": {FrameBuffer},
    "MockShutter": set(),
    "SerialShutter": {FirmwareIdentity},
    "ObisLaser": {FirmwareIdentity},
    "MockPowerMeter": set(),
    "VisaPowerMeter": {FirmwareIdentity},
}
CAPABILITIES = (HardwareSequence, PatternReadback, FrameBuffer, ReadoutTime, FirmwareIdentity)


def _claims(device: object) -> set[type]:
    return {c for c in CAPABILITIES if isinstance(device, c)}


def test_slm_claims_what_the_table_says(slm: SLM) -> None:
    assert _claims(slm) == CLAIMS[type(slm).__name__]


def test_camera_claims_what_the_table_says(camera: Camera) -> None:
    assert _claims(camera) == CLAIMS[type(camera).__name__]


# -- HardwareSequence ----------------------------------------------------------------------------------
def test_hardware_sequence_holds_up_to_its_length_and_shows_the_last(slm: SLM) -> None:
    if not isinstance(slm, HardwareSequence):
        assert slm.sequence_limit == 1
        with pytest.raises(InvalidPattern, match="sequence of 2"):
            slm.write_gray(np.zeros((2, *slm.grid.shape), dtype=np.uint16))
        return
    n = slm.max_sequence_length
    assert isinstance(n, int) and n >= 1 and slm.sequence_limit == n
    count = min(n, 3)
    stack = np.stack([np.full(slm.grid.shape, k, dtype=np.uint16) for k in range(count)])
    before = slm.frame_count
    slm.write_gray(stack)
    assert slm.frame_count == before + count
    if isinstance(slm, PatternReadback):
        assert np.all(slm.shown_gray == count - 1)


# -- PatternReadback ------------------------------------------------------------------------------------
def test_pattern_readback_is_what_was_written_and_a_copy_of_nothing_else(slm: SLM) -> None:
    if not isinstance(slm, PatternReadback):
        pytest.skip(f"{type(slm).__name__} does not read its pattern back")
    levels = np.random.default_rng(1).integers(0, slm.levels, slm.grid.shape, dtype=np.uint16)
    slm.write_gray(levels)
    shown = slm.shown_gray
    assert shown.shape == slm.grid.shape
    np.testing.assert_array_equal(shown, levels)


# -- FrameBuffer ---------------------------------------------------------------------------------------
def test_full_buffer_drops_the_oldest_unread_frames(camera: Camera) -> None:
    if not isinstance(camera, FrameBuffer):
        pytest.skip(f"{type(camera).__name__} has no settable frame buffer")
    camera.discard_unread()
    camera.buffer_size = 2
    assert camera.buffer_size == 2
    acquired, lost = camera.frames_acquired, camera.frames_lost
    for _ in range(4):
        camera.trigger()
    assert camera.frames_acquired == acquired + 4
    assert camera.frames_lost == lost + 2
    batch = camera.read_frames(2, timeout_s=5)
    assert list(batch.frame_numbers) == [acquired + 2, acquired + 3]
    assert batch.data.shape == (2, *camera.grid.shape)


@pytest.mark.parametrize("size", [0, -1, 2.5, "8"])
def test_buffer_size_must_be_a_positive_integer(camera: Camera, size: object) -> None:
    if not isinstance(camera, FrameBuffer):
        pytest.skip(f"{type(camera).__name__} has no settable frame buffer")
    before = camera.buffer_size
    with pytest.raises(InvalidSetting, match="buffer_size must be a positive integer") as err:
        camera.buffer_size = size  # type: ignore[assignment]
    assert err.value.device == camera.name and camera.buffer_size == before


# -- ReadoutTime ---------------------------------------------------------------------------------------
def test_readout_time_is_finite_and_frames_are_no_closer_than_exposure_plus_readout(camera: Camera) -> None:
    if not isinstance(camera, ReadoutTime):
        assert readout_s(camera) == 0.0
        return
    t = camera.readout_s
    assert isinstance(t, float) and math.isfinite(t) and t >= 0 and readout_s(camera) == t
    camera.discard_unread()
    first, second = camera.capture(timeout_s=5), camera.capture(timeout_s=5)
    assert second.timestamp_s - first.timestamp_s >= camera.exposure_s + t - 1e-9


# -- FirmwareIdentity -------------------------------------------------------------------------------------
def _check_firmware(device: object) -> None:
    if isinstance(device, FirmwareIdentity):
        assert isinstance(device.firmware, str) and device.firmware and firmware(device) == device.firmware
    else:
        assert firmware(device) == ""


def test_camera_firmware_is_a_non_empty_string_where_claimed(camera: Camera) -> None:
    _check_firmware(camera)


def test_shutter_firmware_is_a_non_empty_string_where_claimed(shutter: Shutter) -> None:
    _check_firmware(shutter)


def test_power_meter_firmware_is_a_non_empty_string_where_claimed(power_meter: PowerMeter) -> None:
    _check_firmware(power_meter)


# -- Shutter ---------------------------------------------------------------------------------------------
def test_shutter_opens_and_blocks_the_beam_and_reads_it_back(shutter: Shutter) -> None:
    assert _claims(shutter) == CLAIMS[type(shutter).__name__]
    assert shutter.info.driver and shutter.info.model and shutter.info.serial
    shutter.block_beam()
    assert shutter.beam_open is False
    shutter.block_beam()  # already blocked: stays blocked
    assert shutter.beam_open is False
    shutter.open_beam()
    assert shutter.beam_open is True


def test_closed_shutter_keeps_its_identity_and_refuses_to_move(shutter: Shutter) -> None:
    info = shutter.info
    with pytest.raises(DeviceBusy, match="already open"):
        shutter.open()
    shutter.close()
    assert shutter.info == info
    for action in (shutter.open_beam, shutter.block_beam, lambda: shutter.beam_open):
        with pytest.raises(DeviceDisconnected) as err:
            action()
        assert err.value.device == shutter.name
    shutter.open()


# -- PowerMeter ------------------------------------------------------------------------------------------
def test_power_meter_reads_finite_power_and_keeps_its_wavelength(power_meter: PowerMeter) -> None:
    assert _claims(power_meter) == CLAIMS[type(power_meter).__name__]
    power_meter.wavelength_m = 633e-9
    assert power_meter.wavelength_m == pytest.approx(633e-9, rel=1e-3)
    power = power_meter.read_power_w()
    assert isinstance(power, float) and math.isfinite(power) and power >= 0


@pytest.mark.parametrize("bad", [math.nan, math.inf, -532e-9, 0.0])
def test_power_meter_refuses_a_wavelength_that_is_not_a_positive_number(power_meter: PowerMeter, bad: float) -> None:
    with pytest.raises(InvalidSetting, match="wavelength") as err:
        power_meter.wavelength_m = bad
    assert err.value.device == power_meter.name


def test_closed_power_meter_keeps_its_identity_and_reads_nothing(power_meter: PowerMeter) -> None:
    info = power_meter.info
    power_meter.close()
    assert power_meter.info == info
    with pytest.raises(DeviceDisconnected):
        power_meter.read_power_w()
    power_meter.open()
