"""The camera contract (drivers/camera.py), run on every camera implementation that can run here."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from drivers.camera import Camera
from drivers.errors import DeviceBusy, DeviceDisconnected, DeviceTimeout, InvalidSetting, UnsupportedFeature


def test_description_is_consistent(camera: Camera) -> None:
    g = camera.grid
    assert g.rows > 0 and g.cols > 0 and g.pitch_m > 0
    assert 8 <= camera.bit_depth <= 16
    lo, hi = camera.exposure_limits_s
    assert 0 < lo <= hi and math.isfinite(hi)
    info = camera.info
    assert info.driver and info.model and info.serial


def test_capture_returns_a_frame_with_metadata(camera: Camera) -> None:
    frame = camera.capture(timeout_s=5)
    assert frame.data.shape == camera.grid.shape
    assert np.issubdtype(frame.data.dtype, np.integer)
    assert 0 <= frame.data.min() and frame.data.max() <= camera.max_level
    assert frame.exposure_s == pytest.approx(camera.exposure_s)
    second = camera.capture(timeout_s=5)
    assert second.frame_number == frame.frame_number + 1
    assert second.timestamp_s >= frame.timestamp_s
    assert camera.frames_acquired >= 2


def test_exposure_round_trip_and_limits(camera: Camera) -> None:
    lo, hi = camera.exposure_limits_s
    target = math.sqrt(lo * hi)
    camera.exposure_s = target
    assert camera.exposure_s == pytest.approx(target, rel=0.05)
    for bad in (lo / 2, hi * 2, math.nan, math.inf, -1.0):
        with pytest.raises(InvalidSetting, match="exposure") as err:
            camera.exposure_s = bad
        assert err.value.device == camera.name
    assert camera.exposure_s == pytest.approx(target, rel=0.05)


def test_gain_is_optional_but_checked(camera: Camera) -> None:
    limits = camera.gain_limits
    if limits is None:
        assert camera.gain is None
        with pytest.raises(UnsupportedFeature):
            camera.gain = 1.0
    else:
        camera.gain = limits[0]
        assert camera.gain == pytest.approx(limits[0])
        with pytest.raises(InvalidSetting):
            camera.gain = limits[1] + 1


def test_reading_without_a_trigger_times_out_quickly(camera: Camera) -> None:
    camera.discard_unread()
    started = time.monotonic()
    with pytest.raises(DeviceTimeout, match="frame"):
        camera.read_frame(timeout_s=0.2)
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("timeout", [0, -1, math.inf, math.nan])
def test_timeouts_must_be_finite_and_positive(camera: Camera, timeout: float) -> None:
    with pytest.raises(InvalidSetting, match="timeout"):
        camera.read_frame(timeout_s=timeout)
    with pytest.raises(InvalidSetting):
        camera.read_frames(0)


def test_discard_unread_drops_waiting_frames(camera: Camera) -> None:
    camera.discard_unread()
    camera.trigger()
    camera.trigger()
    assert camera.discard_unread() == 2
    with pytest.raises(DeviceTimeout):
        camera.read_frame(timeout_s=0.05)


def test_trigger_source_is_validated(camera: Camera) -> None:
    with pytest.raises(InvalidSetting, match="trigger source"):
        camera.trigger_source = "laser"
    try:
        camera.trigger_source = "hardware"
    except UnsupportedFeature:
        assert camera.trigger_source == "software"
    else:
        with pytest.raises(InvalidSetting, match="hardware"):
            camera.trigger()
        camera.trigger_source = "software"


def test_closed_camera_answers_its_description_but_gives_no_frames(camera: Camera) -> None:
    info, grid, bit_depth = camera.info, camera.grid, camera.bit_depth
    with pytest.raises(DeviceBusy, match="already open"):
        camera.open()
    camera.close()
    assert not camera.is_open
    assert (camera.info, camera.grid, camera.bit_depth) == (info, grid, bit_depth)
    with pytest.raises(DeviceDisconnected, match="not open"):
        camera.capture()
    with pytest.raises(DeviceDisconnected):
        camera.exposure_s = camera.exposure_limits_s[0]
    camera.close()  # idempotent
    with camera:
        assert camera.capture(timeout_s=5).data.shape == camera.grid.shape
    assert not camera.is_open
    camera.open()
