"""Any slmsuite camera (vendor drivers, webcams, the simulated camera) behind our
:class:`~drivers.camera.Camera` interface.

slmsuite cameras have no trigger API: ``get_image`` returns the next frame. ``trigger()`` therefore
grabs one frame at once (a copy, into a :class:`~drivers.frame_queue.FrameQueue`), and reads take
frames from that queue. Exposure is in seconds on both sides; slmsuite *clips* an exposure outside
its bounds with a warning, so our limits are checked first and the value read back is reported.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from drivers.bench import BenchContext
from drivers.device import DeviceInfo
from drivers.errors import DeviceDisconnected, DeviceNotFound
from drivers.frame_queue import FrameQueue, QueuedCamera
from drivers.slm import PixelGrid
from drivers.slmsuite_common import CAMERA_MODELS, address, check_model, load_class, vendor_errors
from drivers.slmsuite_slm import SHARED_KEY


class SlmsuiteCamera(QueuedCamera):
    """Wraps the slmsuite camera class named by ``model`` (see ``drivers.slmsuite_common.CAMERA_MODELS``).

    ``settings`` go to that class's constructor. ``model = "simulated"`` images the slmsuite SLM of
    the bench role ``images`` (an ``slmsuite`` driver on the same bench). ``pitch_m`` is used when
    the camera does not report its pixel pitch; ``exposure_limits_s`` when it reports no bounds.
    """

    NO_FRAME_HINT = "slmsuite cameras have no free-running stream here; call trigger() first"

    def __init__(self, name: str, model: str = "simulated", settings: dict[str, Any] | None = None,
                 pitch_m: float | None = None, exposure_limits_s: tuple[float, float] | list[float] = (1e-6, 10.0),
                 buffer_size: int = 64, grab_timeout_s: float = 2.0, images: str = "fourier_slm", serial: str = "",
                 context: BenchContext | None = None) -> None:
        super().__init__(name)
        self._model = model
        self._entry = check_model(CAMERA_MODELS, model, "camera")
        self._settings = dict(settings or {})
        self._pitch_m = pitch_m
        lo, hi = (float(v) for v in exposure_limits_s)
        if not 0 < lo <= hi:
            raise ValueError(f"exposure_limits_s must be 0 < min <= max; got {list(exposure_limits_s)}")
        self._default_limits = (lo, hi)
        self._queue = FrameQueue(name, buffer_size)
        self._grab_timeout_s = grab_timeout_s
        self._images = images
        self._serial = serial
        self._context = context
        self._cam: Any = None
        self._model_name = model  # the slmsuite class's name once opened

    @property
    def address(self) -> str:
        return address(self._model, self._settings)

    @property
    def slmsuite_camera(self) -> Any:
        self._require_open()
        return self._cam

    def _need(self) -> Any:
        if self._cam is None:
            raise DeviceDisconnected(self.name, f"{self.address} is not open; call open() first")
        return self._cam

    # -- description ---------------------------------------------------------------------------------
    @property
    def info(self) -> DeviceInfo:
        return DeviceInfo(driver="slmsuite", vendor=self._entry.vendor, model=self._model_name, serial=self._serial or self.address)

    @property
    def grid(self) -> PixelGrid:
        def read() -> PixelGrid:
            rows, cols = self._cam.shape
            pitch_um = getattr(self._cam, "pitch_um", None)  # a third-party object: not every slmsuite camera has one
            pitch = float(np.ravel(pitch_um)[0]) * 1e-6 if pitch_um is not None else self._pitch_m
            if pitch is None:
                raise DeviceNotFound(self.name, f"{self.address} reports no pixel pitch; set pitch_m in the bench file")
            return PixelGrid(int(rows), int(cols), pitch)

        return self._described("grid", read)

    @property
    def bit_depth(self) -> int:
        return self._described("bit depth", lambda: int(self._cam.bitdepth))

    @property
    def exposure_limits_s(self) -> tuple[float, float]:
        bounds = self._need().exposure_bounds_s
        return self._default_limits if bounds is None else (float(bounds[0]), float(bounds[1]))

    # -- life cycle -------------------------------------------------------------------------------------
    def _connect(self) -> None:
        cls = load_class(self.name, self._model, self._entry)
        settings = dict(self._settings)
        if self._model == "simulated" and "slm" not in settings:
            slm = None if self._context is None else self._context.shared(SHARED_KEY, dict).get(self._images)
            if slm is None:
                raise DeviceNotFound(
                    self.name, f"{self.address} images the slmsuite SLM of role {self._images!r}, which is not open; "
                    f"give that role driver = \"slmsuite\" on the same bench"
                )
            settings["slm"] = slm
        with vendor_errors(self.name, self.address, "opening the camera"):
            self._cam = cls(**settings)
        self._model_name = type(self._cam).__name__
        self._queue.reset_counters()

    def _disconnect(self) -> None:
        cam, self._cam = self._cam, None
        self._queue.clear()
        if cam is not None:
            with vendor_errors(self.name, self.address, "closing the camera"):
                cam.close()

    # -- settings -----------------------------------------------------------------------------------------
    def _get_exposure(self) -> float:
        cam = self._need()
        with vendor_errors(self.name, self.address, "reading the exposure"):
            return float(cam.get_exposure())

    def _set_exposure(self, seconds: float) -> None:
        cam = self._need()
        with vendor_errors(self.name, self.address, "setting the exposure"):
            cam.set_exposure(seconds)

    # -- frames -----------------------------------------------------------------------------------------------
    def _software_trigger(self) -> None:
        cam = self._need()
        with vendor_errors(self.name, self.address, "grabbing a frame"):
            image = cam.get_image(timeout_s=self._grab_timeout_s)
            exposure = float(cam.exposure_s)
        data = np.array(image, copy=True)  # the driver may reuse its buffer
        self._queue.push(data, time.monotonic(), exposure)
