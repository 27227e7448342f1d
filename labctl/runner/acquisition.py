"""Capturing a batch of inputs through the bench, with bounded retries and reconnects.

Showing a batch and capturing its frames is idempotent: on a timeout, a lost frame, a dropped link or
a failed SLM write, the partial batch is thrown away, the failing device is reopened if needed, and
the whole batch is shown again. Every failure is reported to ``on_fault`` (the run record's log).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from drivers.bench import Bench
from drivers.camera import FrameBatch, TriggerSource
from drivers.capabilities import readout_s
from drivers.errors import DeviceDisconnected, DeviceError, DeviceTimeout, InvalidPattern, InvalidSetting, UnsupportedFeature
from drivers.slm import SLM


class AcquisitionFailed(DeviceError):
    """A batch could not be captured within the allowed attempts."""


@dataclass
class RetryPolicy:
    attempts: int = 5
    first_backoff_s: float = 0.05
    max_backoff_s: float = 2.0

    def backoff_s(self, attempt: int) -> float:
        return min(self.max_backoff_s, self.first_backoff_s * 2**attempt)


@dataclass
class BatchAcquirer:
    """Shows input amplitudes and captures one frame per input, robust to the bench's faults.

    ``fourier_gray`` is re-written after any reconnect of the Fourier SLM, and before the first batch.
    Hardware triggering (a sequence on the input modulator, one camera frame per pattern) is used when
    both devices offer it; otherwise each input is shown and software-triggered in turn.
    """

    bench: Bench
    fourier_gray: np.ndarray
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    on_fault: Callable[[str, str, int], None] = lambda kind, message, first_index: None
    faults: int = 0
    _mask_shown: bool = False
    _sequence_length: int = 1
    _chunk: int = 0  # inputs shown per attempt; adapts to the fault rate (0: whole batches)
    _after_failure: bool = False

    @property
    def uses_hardware_trigger(self) -> bool:
        return self._sequence_length > 1

    def prepare(self) -> None:
        """Choose the trigger mode; the Fourier mask is shown (with retries) by the first capture."""
        cam, inp = self.bench.camera, self.bench.input_slm
        self._sequence_length = 1
        if inp.sequence_limit > 1:
            try:
                cam.trigger_source = TriggerSource.HARDWARE
                self._sequence_length = inp.sequence_limit
            except UnsupportedFeature:
                cam.trigger_source = TriggerSource.SOFTWARE
        else:
            cam.trigger_source = TriggerSource.SOFTWARE
        self._mask_shown = False

    def set_mask(self, fourier_gray: np.ndarray) -> None:
        """Use another Fourier mask from the next capture on (shown with the same retries)."""
        if fourier_gray is not self.fourier_gray:
            self.fourier_gray = fourier_gray
            self._mask_shown = False

    def _show_mask(self) -> None:
        self.bench.fourier_slm.write_gray(self.fourier_gray)
        self._mask_shown = True

    def _frame_timeout_s(self) -> float:
        cam = self.bench.camera
        return 1.0 + 4 * (cam.exposure_s + readout_s(cam) + self.bench.input_slm.settle_time_s)

    def _capture_once(self, amplitudes: np.ndarray) -> FrameBatch:
        cam, inp = self.bench.camera, self.bench.input_slm
        if not self._mask_shown:
            self._show_mask()
        if self._after_failure:
            # frames of the failed attempt may still be in exposure or readout: let them land, then drop them
            time.sleep(cam.exposure_s + readout_s(cam))
            self._after_failure = False
        cam.discard_unread()
        lost_before = cam.frames_lost
        n = amplitudes.shape[0]
        if self.uses_hardware_trigger:
            batch = []
            for start in range(0, n, self._sequence_length):
                chunk = amplitudes[start : start + self._sequence_length]
                inp.write_amplitude(chunk)
                batch.append(cam.read_frames(chunk.shape[0], timeout_s=self._frame_timeout_s() * chunk.shape[0]))
            frames = batch[0] if len(batch) == 1 else _concat(batch)
        else:
            singles = []
            for image in amplitudes:
                inp.write_amplitude(image)
                singles.append(cam.capture(timeout_s=self._frame_timeout_s()))
            frames = FrameBatch.stack(singles)
        if cam.frames_lost != lost_before:
            raise DeviceTimeout(cam.name, f"{cam.frames_lost - lost_before} frame(s) lost from the camera buffer")
        return frames

    def capture(self, amplitudes: np.ndarray, first_index: int = -1) -> FrameBatch:
        """Frames for ``amplitudes`` (n, rows, cols) in [0, 1], in order, one per input.

        Captured in chunks: a chunk that fails is shown again at half the size (a missed trigger in a
        long sequence costs little), and the chunk size grows back after successes. A chunk that
        fails ``policy.attempts`` times in a row at its smallest size ends the run with
        AcquisitionFailed; what was captured before is kept by the caller's record.
        """
        n = amplitudes.shape[0]
        parts: list[FrameBatch] = []
        start, chunk = 0, min(self._chunk or n, n)
        failures = 0
        last_error: DeviceError | None = None
        while start < n:
            piece = amplitudes[start : start + chunk]
            index = first_index + start if first_index >= 0 else first_index
            try:
                parts.append(self._capture_once(piece))
                start += piece.shape[0]
                failures = 0
                chunk = min(2 * chunk, n)
                continue
            except (InvalidPattern, InvalidSetting, UnsupportedFeature):
                raise  # refused input or setting: showing it again cannot help
            except DeviceDisconnected as exc:
                last_error = exc
                self._report(exc, "disconnect", index, failures)
                failures += 1  # a link that keeps dropping counts whatever the chunk size
                try:
                    self._reconnect(exc.device)
                except DeviceError as reopen_error:
                    last_error = reopen_error
                    self._report(reopen_error, "reconnect_failed", index, failures)
            except DeviceError as exc:
                last_error = exc
                self._report(exc, "timeout" if isinstance(exc, DeviceTimeout) else "device_error", index, failures)
                if exc.device == self.bench.fourier_slm.name:
                    self._mask_shown = False
                if chunk == 1:
                    failures += 1
                chunk = max(1, chunk // 2)
            if failures >= self.policy.attempts:
                raise AcquisitionFailed(
                    last_error.device if last_error is not None else self.bench.camera.name,
                    f"{_what(index)} failed {failures} times in a row; last error: {last_error}",
                )
            time.sleep(self.policy.backoff_s(failures))
        self._chunk = chunk
        return parts[0] if len(parts) == 1 else _concat(parts)

    def _report(self, exc: Exception, kind: str, first_index: int, attempt: int) -> None:
        self.faults += 1
        self._after_failure = True
        self.on_fault(kind, f"{_what(first_index)} (failure {attempt + 1} in a row): {exc}", first_index)

    def _reconnect(self, device_name: str) -> None:
        """Close and reopen the device (keeping the camera's settings); the mask is shown again."""
        device = self.bench.devices.get(device_name)
        if device is None:
            return
        if device is self.bench.camera:
            cam = self.bench.camera
            exposure, source = cam.exposure_s, cam.trigger_source
            cam.close()
            cam.open()
            cam.exposure_s = exposure
            cam.trigger_source = source
        else:
            device.close()
            device.open()
            if isinstance(device, SLM) and device is self.bench.fourier_slm:
                self._mask_shown = False


def _what(index: int) -> str:
    """Name of what was being captured: a data-set input, or frames for exposure/readout set-up."""
    return f"input {index}" if index >= 0 else "set-up frames (exposure, readout scale)"


def _concat(batches: list[FrameBatch]) -> FrameBatch:
    return FrameBatch(
        data=np.concatenate([b.data for b in batches]),
        frame_numbers=np.concatenate([b.frame_numbers for b in batches]),
        timestamps_s=np.concatenate([b.timestamps_s for b in batches]),
        exposure_s=batches[-1].exposure_s,
        gain=batches[-1].gain,
    )
