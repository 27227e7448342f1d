"""UVC webcams and video files through OpenCV's ``cv2.VideoCapture``, for low-cost benches.

``source`` is a device index (``0``, a UVC camera) or a path (a video file, used in CI and for
replaying a recorded run). Colour frames are converted to gray. ``trigger()`` grabs the next frame.
UVC exposure goes through ``CAP_PROP_EXPOSURE``, whose unit depends on the backend: with V4L2 it
is ``exposure_time_absolute`` in 100 µs steps, which is what ``exposure_unit_s`` defaults to. A
file has a fixed exposure (one frame period) and no exposure control.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from drivers.device import DeviceInfo
from drivers.errors import DeviceDisconnected, DeviceNotFound, DeviceTimeout
from drivers.frame_queue import FrameQueue, QueuedCamera
from drivers.slm import PixelGrid


class OpenCVCamera(QueuedCamera):
    """A UVC camera (``source = 0``) or a video file (``source = "run.avi"``) read with OpenCV."""

    NO_FRAME_HINT = "each frame is grabbed at trigger(); call trigger() first"

    def __init__(self, name: str, source: int | str = 0, pitch_m: float = 3e-6, exposure_limits_s: list[float] | None = None,
                 exposure_unit_s: float = 1e-4, loop: bool = False, buffer_size: int = 64) -> None:
        super().__init__(name)
        self._source = source
        self._is_file = isinstance(source, str)
        self._pitch_m = float(pitch_m)
        self._limits = None if exposure_limits_s is None else (float(exposure_limits_s[0]), float(exposure_limits_s[1]))
        self._unit_s = float(exposure_unit_s)
        self._loop = loop
        self._queue = FrameQueue(name, buffer_size)
        self._capture = None
        self._backend = ""  # OpenCV's capture back end, as last opened
        self._shape = (0, 0)
        self._bit_depth = 8
        self._frame_period_s = 0.0

    @property
    def address(self) -> str:
        return f"video file {self._source}" if self._is_file else f"UVC camera index {self._source}"

    def _need(self):  # noqa: ANN202 - cv2.VideoCapture
        if self._capture is None:
            raise DeviceDisconnected(self.name, f"{self.address} is not open; call open() first")
        return self._capture

    # -- description --------------------------------------------------------------------------------------
    @property
    def info(self) -> DeviceInfo:
        return DeviceInfo(driver="opencv", vendor=f"OpenCV {self._backend}".strip(), model="video file" if self._is_file else "UVC",
                          serial=str(self._source))

    @property
    def grid(self) -> PixelGrid:
        return self._described("grid", lambda: PixelGrid(self._shape[0], self._shape[1], self._pitch_m))

    @property
    def bit_depth(self) -> int:
        return self._described("bit depth", lambda: self._bit_depth)

    @property
    def exposure_limits_s(self) -> tuple[float, float]:
        if self._is_file or self._limits is None:
            e = self._get_exposure()
            return (e, e)
        return self._limits

    def _get_exposure(self) -> float:
        import cv2

        cap = self._need()
        if self._is_file or self._limits is None:
            return self._frame_period_s
        return float(cap.get(cv2.CAP_PROP_EXPOSURE)) * self._unit_s

    def _set_exposure(self, seconds: float) -> None:
        import cv2

        cap = self._need()
        if self._is_file or self._limits is None:
            return  # limits are (e, e): the fixed frame period is the only accepted value
        cap.set(cv2.CAP_PROP_AUTO_EXPOSURE, 1)  # V4L2: 1 = manual
        cap.set(cv2.CAP_PROP_EXPOSURE, seconds / self._unit_s)

    # -- life cycle -------------------------------------------------------------------------------------------
    def _connect(self) -> None:
        import cv2

        if self._is_file and not Path(self._source).is_file():
            raise DeviceNotFound(self.name, f"{self.address} does not exist; check source = \"...\" in the bench file")
        cap = cv2.VideoCapture(self._source)
        try:
            if not cap.isOpened():
                raise DeviceNotFound(self.name, f"OpenCV could not open {self.address}; check the index (v4l2-ctl "
                                     "--list-devices) or the file's codec, and that no other program uses the camera")
            ok, first = cap.read()
            if not ok or first is None:
                raise DeviceNotFound(self.name, f"{self.address} delivered no frame on open")
            if self._is_file:
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            fps = float(cap.get(cv2.CAP_PROP_FPS)) or 30.0
        except BaseException:
            cap.release()
            raise
        self._capture = cap
        self._backend = cap.getBackendName()
        gray = self._to_gray(first)
        self._shape = gray.shape
        self._bit_depth = 8 if gray.dtype == np.uint8 else 16
        self._frame_period_s = 1.0 / fps
        self._queue.reset_counters()

    def _disconnect(self) -> None:
        cap, self._capture = self._capture, None
        self._queue.clear()
        if cap is not None:
            cap.release()

    @staticmethod
    def _to_gray(image: np.ndarray) -> np.ndarray:
        import cv2

        if image.ndim == 3:
            return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        return np.array(image, copy=True)

    # -- frames --------------------------------------------------------------------------------------------------
    def _software_trigger(self) -> None:
        import cv2

        cap = self._need()
        started = time.monotonic()
        ok, image = cap.read()
        if not ok and self._is_file and self._loop:
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, image = cap.read()
        if not ok or image is None:
            if self._is_file:
                raise DeviceTimeout(self.name, f"{self.address} has no more frames; set loop = true to replay it")
            raise DeviceDisconnected(self.name, f"{self.address} stopped delivering frames; check the USB cable, "
                                     "then close() and open() the camera")
        self._queue.push(self._to_gray(image), started, self._get_exposure())
