"""The unread-frame buffer of a camera whose frames are grabbed by the driver itself.

Cameras with no trigger of their own (slmsuite cameras, OpenCV sources, GenICam devices without
``TriggerSoftware``) are software-triggered by grabbing a frame at ``trigger()`` time. The frames
wait here until read, under the lost-frame rule of :mod:`drivers.camera`: at most ``buffer_size``
unread frames; a frame arriving into a full buffer drops the oldest unread one and counts it lost.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

import numpy as np

from drivers.camera import Camera, Frame, FrameBatch
from drivers.capabilities import FrameBuffer
from drivers.errors import DeviceTimeout, InvalidSetting


Item = TypeVar("Item")


class UnreadBuffer(Generic[Item]):
    """The lost-frame rule and the frame counters, over whatever a driver keeps per unread frame
    (a grabbed :class:`Frame`, or the simulator's not-yet-rendered exposure)."""

    def __init__(self, device: str, buffer_size: int) -> None:
        self._device = device
        self._frames: deque[Item] = deque()
        self.buffer_size = buffer_size
        self.acquired = 0
        self.lost = 0

    @property
    def buffer_size(self) -> int:
        return self._buffer_size

    @buffer_size.setter
    def buffer_size(self, size: int) -> None:
        if not (isinstance(size, int) and size >= 1):
            raise InvalidSetting(self._device, f"buffer_size must be a positive integer; got {size!r}")
        self._buffer_size = size

    def __len__(self) -> int:
        return len(self._frames)

    def append(self, item: Item) -> None:
        """Store the next frame (its number is ``acquired`` before the call); a full buffer drops
        its oldest unread frame and counts it lost."""
        self.acquired += 1
        self._frames.append(item)
        if len(self._frames) > self._buffer_size:  # lost-frame rule
            self._frames.popleft()
            self.lost += 1

    def take(self, n: int) -> list[Item]:
        """The ``n`` oldest unread frames (the caller has checked that ``n`` are waiting)."""
        return [self._frames.popleft() for _ in range(n)]

    def clear(self) -> None:
        self._frames.clear()

    def reset_counters(self) -> None:
        self._frames.clear()
        self.acquired = 0
        self.lost = 0


class FrameQueue(UnreadBuffer[Frame]):
    """Numbers, stores and hands out grabbed frames."""

    def push(self, data: np.ndarray, timestamp_s: float, exposure_s: float, gain: float | None = None) -> Frame:
        """Store a grabbed frame (``data`` must already be a copy the driver owns)."""
        frame = Frame(data, self.acquired, timestamp_s, exposure_s, gain)
        self.append(frame)
        return frame

    def pop(self, n: int, timeout_s: float, trigger_hint: str) -> FrameBatch:
        """The ``n`` oldest unread frames.

        Frames only arrive when the driver grabs them, so when fewer than ``n`` are waiting none
        can arrive during ``timeout_s``: raise at once rather than sleep.
        """
        if len(self._frames) < n:
            raise DeviceTimeout(
                self._device,
                f"asked for {n} frame(s), {len(self._frames)} arrived within {timeout_s:g} s ({trigger_hint})",
            )
        return FrameBatch.stack(self.take(n))


class BufferedCamera(Camera, FrameBuffer):
    """A camera whose unread frames wait in an :class:`UnreadBuffer` (``self._queue``, created by the
    subclass): its buffer size and frame counters are the buffer's."""

    _queue: UnreadBuffer

    @property
    def buffer_size(self) -> int:
        return self._queue.buffer_size

    @buffer_size.setter
    def buffer_size(self, size: int) -> None:
        self._queue.buffer_size = size

    @property
    def frames_acquired(self) -> int:
        return self._queue.acquired

    @property
    def frames_lost(self) -> int:
        return self._queue.lost


class QueuedCamera(BufferedCamera):
    """A camera whose driver grabs each frame itself (at ``trigger()``) into a :class:`FrameQueue`.

    Subclasses create ``self._queue`` and implement ``_need()`` (the open handle, or
    DeviceDisconnected); ``NO_FRAME_HINT`` says what to do when a read finds no frame.
    """

    _queue: FrameQueue
    NO_FRAME_HINT = "call trigger() first"

    def _need(self) -> object:
        raise NotImplementedError

    def _read_frame(self, timeout_s: float) -> Frame:
        return self._read_frames(1, timeout_s).frame(0)

    def _read_frames(self, n: int, timeout_s: float) -> FrameBatch:
        self._need()
        return self._queue.pop(n, timeout_s, self.NO_FRAME_HINT)

    def _discard_unread(self) -> int:
        n = len(self._queue)
        self._queue.clear()
        return n
