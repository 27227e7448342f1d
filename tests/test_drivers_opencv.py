"""OpenCV camera on a video file written by cv2.VideoWriter."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.errors import DeviceNotFound, DeviceTimeout, InvalidSetting
from drivers.opencv_camera import OpenCVCamera
from tests.contract.conftest import write_test_video


def test_frames_come_in_file_order_as_gray(tmp_path: Path) -> None:
    video = write_test_video(tmp_path / "v.avi", frames=4)
    with OpenCVCamera("camera", source=str(video)) as cam:
        assert cam.grid.shape == (48, 64) and cam.bit_depth == 8
        assert cam.exposure_s == pytest.approx(1 / 25)
        means = [cam.capture().data.mean() for _ in range(4)]
        assert means == pytest.approx([0, 10, 20, 30], abs=1.5)
        with pytest.raises(DeviceTimeout, match="loop"):
            cam.trigger()
        with pytest.raises(InvalidSetting, match="exposure"):
            cam.exposure_s = 0.001


def test_loop_replays_the_file(tmp_path: Path) -> None:
    video = write_test_video(tmp_path / "v.avi", frames=2)
    with OpenCVCamera("camera", source=str(video), loop=True) as cam:
        means = [cam.capture().data.mean() for _ in range(3)]
        assert means == pytest.approx([0, 10, 0], abs=1.5)


def test_missing_or_unreadable_source(tmp_path: Path) -> None:
    with pytest.raises(DeviceNotFound, match="does not exist"):
        OpenCVCamera("camera", source=str(tmp_path / "none.avi")).open()
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"not a video")
    cam = OpenCVCamera("camera", source=str(junk))
    with pytest.raises(DeviceNotFound, match="junk.avi"):
        cam.open()
    assert cam._capture is None and not cam.is_open
