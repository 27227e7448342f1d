"""GenICam (GigE Vision, USB3 Vision, CoaXPress ...) cameras through harvesters and a GenTL producer.

The device is found by the producer file (``cti``) and its serial number or list index. Features
are optional: ROI, pixel format, exposure (``ExposureTime``, µs in SFNC) and gain are used only when
the device has them. With ``TriggerSoftware`` the camera is put into software-triggered frame
start; without it (e.g. the simulated ``viky.cti`` producer) the stream runs free and ``trigger()``
takes the first frame that starts after it. Every ``fetch`` has a finite timeout, frame data are
copied out of the GenTL buffer before it is requeued, and every error path destroys the image
acquirer and resets the harvester, so no half-open handle survives a failed ``open()``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from drivers.capabilities import FirmwareIdentity
from drivers.device import DeviceInfo
from drivers.errors import (
    DeviceBusy,
    DeviceDisconnected,
    DeviceError,
    DeviceNotFound,
    DeviceTimeout,
    InvalidSetting,
    UnsupportedFeature,
)
from drivers.frame_queue import FrameQueue, QueuedCamera
from drivers.slm import PixelGrid

#: monochrome pixel formats we accept, best first, with their bit depth
MONO_FORMATS = {"Mono16": 16, "Mono12": 12, "Mono10": 10, "Mono8": 8}

#: GenTL exception class name → (our class, next thing to try)
_GENTL_ERRORS: dict[str, tuple[type[DeviceError], str]] = {
    "TimeoutException": (DeviceTimeout, "check the trigger and that the camera is streaming; raise fetch_timeout_s"),
    "ResourceInUseException": (DeviceBusy, "close the other program (or labctl session) that holds the camera"),
    "AccessDeniedException": (DeviceBusy, "close the other program (or labctl session) that holds the camera"),
    "InvalidHandleException": (DeviceDisconnected, "check the cable and power, then close() and open() the camera"),
    "IoException": (DeviceDisconnected, "check the cable and power, then close() and open() the camera"),
    "NotInitializedException": (DeviceDisconnected, "close() and open() the camera"),
    "OutOfRangeException": (InvalidSetting, "use a value inside the range the message gives"),
    "InvalidArgumentException": (InvalidSetting, "check the settings in the bench file"),
    "AccessException": (UnsupportedFeature, "the feature is read-only or unavailable in this acquisition state"),
}


class HarvestersCamera(QueuedCamera, FirmwareIdentity):
    """A GenICam camera opened by GenTL producer file and serial number (or index).

    ``pitch_m`` is taken from the bench file: SFNC has no pixel-pitch feature, so set it from the
    sensor's data sheet. ``fixed_exposure_s`` is reported as the exposure of cameras without an
    ``ExposureTime`` feature (default: one frame period when ``AcquisitionFrameRate`` exists).
    """

    NO_FRAME_HINT = "each frame is fetched at trigger(); call trigger() first"

    def __init__(self, name: str, cti: str, serial: str | None = None, index: int | None = None,
                 pixel_format: str | None = None, roi: list[int] | None = None, pitch_m: float = 5e-6,
                 fixed_exposure_s: float | None = None, buffer_size: int = 64, fetch_timeout_s: float = 2.0) -> None:
        super().__init__(name)
        if serial is not None and index is not None:
            raise ValueError("give serial or index, not both")
        if roi is not None and len(roi) != 4:
            raise ValueError(f"roi must be [offset_x, offset_y, width, height]; got {roi!r}")
        if pixel_format is not None and pixel_format not in MONO_FORMATS:
            raise ValueError(f"pixel_format {pixel_format!r} is not one of {sorted(MONO_FORMATS)}")
        self._cti = str(cti)
        self._serial = None if serial is None else str(serial)
        self._index = index
        self._pixel_format = pixel_format
        self._roi = roi
        self._pitch_m = float(pitch_m)
        self._fixed_exposure_s = fixed_exposure_s
        self._queue = FrameQueue(name, buffer_size)
        self._fetch_timeout_s = float(fetch_timeout_s)
        self._harvester: Any = None
        self._ia: Any = None
        self._device_info: Any = None
        self._identity = DeviceInfo(driver="harvesters", vendor="GenICam", model="?", serial=self._serial or "?")
        self._firmware = ""
        self._bit_depth = 8
        self._shape = (0, 0)
        self._has_software_trigger = False

    # -- addressing and errors --------------------------------------------------------------------
    @property
    def address(self) -> str:
        which = f"serial {self._serial!r}" if self._serial is not None else f"index {self._index or 0}"
        return f"GenTL producer {self._cti}, {which}"

    @contextlib.contextmanager
    def _vendor(self, action: str) -> Iterator[None]:
        """Map harvesters/genicam exceptions (matched by class name: genicam is imported lazily)."""
        try:
            yield
        except DeviceError:
            raise
        except Exception as exc:  # noqa: BLE001 - GenTL raises its own classes; keep the cause chained
            name = type(exc).__name__
            cls, hint = _GENTL_ERRORS.get(name, (DeviceError, "close() and open() the camera; check the producer's log"))
            raise cls(self.name, f"{action} on {self.address}: {name}: {exc}; {hint}") from exc

    def _need(self) -> Any:
        if self._ia is None:
            raise DeviceDisconnected(self.name, f"{self.address} is not open; call open() first")
        return self._ia

    def _node(self, feature: str) -> Any | None:
        node_map = self._need().remote_device.node_map
        return getattr(node_map, feature) if hasattr(node_map, feature) else None

    # -- description ------------------------------------------------------------------------------------
    @property
    def info(self) -> DeviceInfo:
        return self._identity

    @property
    def firmware(self) -> str:
        return self._firmware

    @property
    def grid(self) -> PixelGrid:
        return self._described("grid", lambda: PixelGrid(self._shape[0], self._shape[1], self._pitch_m))

    @property
    def bit_depth(self) -> int:
        return self._described("bit depth", lambda: self._bit_depth)

    # -- exposure and gain ------------------------------------------------------------------------------
    def _nominal_exposure_s(self) -> float:
        if self._fixed_exposure_s is not None:
            return float(self._fixed_exposure_s)
        rate = self._node("AcquisitionFrameRate")
        return 1.0 / float(rate.value) if rate is not None else 0.01

    @property
    def exposure_limits_s(self) -> tuple[float, float]:
        node = self._node("ExposureTime")
        if node is None:
            e = self._nominal_exposure_s()
            return (e, e)
        return (float(node.min) * 1e-6, float(node.max) * 1e-6)

    def _get_exposure(self) -> float:
        node = self._node("ExposureTime")
        if node is None:
            return self._nominal_exposure_s()
        with self._vendor("reading ExposureTime"):
            return float(node.value) * 1e-6

    def _set_exposure(self, seconds: float) -> None:
        node = self._node("ExposureTime")
        if node is None:
            return  # limits are (e, e): the only accepted value is the fixed one
        with self._vendor("setting ExposureTime"):
            node.value = seconds * 1e6

    @property
    def gain_limits(self) -> tuple[float, float] | None:
        node = self._node("Gain") if self._ia is not None else None
        return None if node is None else (float(node.min), float(node.max))

    def _get_gain(self) -> float:
        with self._vendor("reading Gain"):
            return float(self._node("Gain").value)

    def _set_gain(self, value: float) -> None:
        with self._vendor("setting Gain"):
            self._node("Gain").value = value

    # -- life cycle ---------------------------------------------------------------------------------------
    def _connect(self) -> None:
        if not Path(self._cti).is_file():
            raise DeviceNotFound(
                self.name, f"GenTL producer file {self._cti} not found; install the camera vendor's SDK (it ships the "
                ".cti) or fix cti = \"...\" in the bench file"
            )
        try:
            from harvesters.core import Harvester
        except ImportError as exc:
            raise DeviceNotFound(self.name, f"harvesters is not installed ({exc}); pip install 'labctl[hardware]'") from exc
        self._harvester = Harvester()
        try:
            with self._vendor("loading the producer"):
                self._harvester.add_file(self._cti, check_existence=True, check_validity=True)
                self._harvester.update()
            self._device_info = d = self._find_device()
            # copied out: GenTL closes the device-info object with the producer, the identity stays
            self._identity = DeviceInfo(driver="harvesters", vendor=str(d.vendor), model=str(d.model), serial=str(d.serial_number))
            self._firmware = str(d.version)
            with self._vendor("opening the camera"):
                self._ia = self._harvester.create(self._device_info)
            self._configure()
            with self._vendor("starting acquisition"):
                self._ia.start()
        except BaseException:
            self._release()
            raise
        self._queue.reset_counters()

    def _find_device(self) -> Any:
        devices = list(self._harvester.device_info_list)
        found = [f"serial {d.serial_number!r} ({d.vendor} {d.model})" for d in devices]
        listing = ", ".join(found) or (
            "none (the producer lists no devices; if another harvester in this process or another program holds "
            "the producer or camera, close it)"
        )
        if self._serial is not None:
            for d in devices:
                if str(d.serial_number) == self._serial:
                    return d
            raise DeviceNotFound(self.name, f"no camera with {self.address}; found {listing}; check the cable, power "
                                 "and serial number")
        index = self._index or 0
        if not 0 <= index < len(devices):
            raise DeviceNotFound(self.name, f"no camera at {self.address}; found {listing}")
        return devices[index]

    def _configure(self) -> None:
        node_map = self._ia.remote_device.node_map
        fmt = self._choose_pixel_format(node_map)
        with self._vendor(f"setting PixelFormat {fmt}"):
            if node_map.PixelFormat.value != fmt:
                node_map.PixelFormat.value = fmt
        self._bit_depth = MONO_FORMATS[fmt]
        if self._roi is not None:
            x, y, w, h = (int(v) for v in self._roi)
            with self._vendor(f"setting the ROI {self._roi}"):
                for feature, value in (("OffsetX", 0), ("OffsetY", 0), ("Width", w), ("Height", h), ("OffsetX", x), ("OffsetY", y)):
                    if not hasattr(node_map, feature):
                        if value:
                            raise UnsupportedFeature(self.name, f"{self.address} has no {feature} feature; drop roi")
                        continue
                    getattr(node_map, feature).value = value
        self._shape = (int(node_map.Height.value), int(node_map.Width.value))
        self._has_software_trigger = hasattr(node_map, "TriggerSoftware") and hasattr(node_map, "TriggerMode")
        if self._has_software_trigger:
            with self._vendor("selecting software trigger"):
                if hasattr(node_map, "TriggerSelector"):
                    node_map.TriggerSelector.value = "FrameStart"
                node_map.TriggerMode.value = "On"
                node_map.TriggerSource.value = "Software"

    def _choose_pixel_format(self, node_map: Any) -> str:
        if not hasattr(node_map, "PixelFormat"):
            raise UnsupportedFeature(self.name, f"{self.address} has no PixelFormat feature")
        available = [str(s) for s in node_map.PixelFormat.symbolics]
        if self._pixel_format is not None:
            if self._pixel_format not in available:
                raise UnsupportedFeature(self.name, f"{self.address} has no pixel format {self._pixel_format}; "
                                         f"it offers {available}")
            return self._pixel_format
        for fmt in MONO_FORMATS:
            if fmt in available:
                return fmt
        raise UnsupportedFeature(self.name, f"{self.address} offers no monochrome pixel format ({available})")

    def _release(self) -> None:
        """Stop, destroy and reset whatever exists; never raises (used on error paths)."""
        ia, self._ia = self._ia, None
        harvester, self._harvester = self._harvester, None
        self._queue.clear()
        if ia is not None:
            with contextlib.suppress(Exception):
                ia.stop()
            with contextlib.suppress(Exception):
                ia.destroy()
        if harvester is not None:
            with contextlib.suppress(Exception):
                harvester.reset()

    def _disconnect(self) -> None:
        self._release()

    def reconnect(self) -> None:
        """Destroy the image acquirer and create it again (after a cable pull or a producer error)."""
        self.close()
        self.open()

    # -- frames ---------------------------------------------------------------------------------------------
    def _fetch_copy(self, ia: Any) -> np.ndarray:
        with self._vendor("fetching a frame"):
            with ia.fetch(timeout=self._fetch_timeout_s) as buffer:
                component = buffer.payload.components[0]
                data = np.array(component.data, copy=True)  # the buffer goes back to the producer on exit
                height, width = int(component.height), int(component.width)
        dtype = np.uint8 if self._bit_depth == 8 else np.uint16
        return data.reshape(height, width).astype(dtype, copy=False)

    def _software_trigger(self) -> None:
        ia = self._need()
        started = time.monotonic()
        if self._has_software_trigger:
            with self._vendor("executing TriggerSoftware"):
                ia.remote_device.node_map.TriggerSoftware.execute()
        else:
            # Free-running stream: drop frames that were exposed before this trigger.
            with self._vendor("flushing stale frames"):
                for _ in range(int(ia.num_buffers) + 1):
                    stale = ia.try_fetch(timeout=1e-3)
                    if stale is None:
                        break
                    stale.queue()
        data = self._fetch_copy(ia)
        self._queue.push(data, started, self._get_exposure(), self.gain)
