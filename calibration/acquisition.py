"""The one acquirer: every frame labctl takes through a bench — calibration sweeps, the runner's
batches, fine-tuning captures — goes through :class:`Acquirer`.

It owns what the bench shows (the Fourier mask, the input pattern), chooses the trigger mode
(a hardware-triggered sequence on the input modulator where both devices offer it, software
triggers otherwise), applies one timeout rule (:func:`frame_timeout_s`) and recovers from the faults
a real bench shows: a camera timeout or missed trigger, a lost frame, a failed SLM write, a dropped
link. Showing patterns and capturing their frames is idempotent, so a failed attempt is thrown away
and repeated after a backoff; a device whose link dropped is closed and reopened (the camera keeps
its exposure, gain and trigger source) and the current mask and input are shown again. Every
failure is reported to ``on_fault`` (a run record's events, a calibration's raw log); a step that
keeps failing ends with :class:`AcquisitionFailed`, naming the device that failed last.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from drivers.bench import Bench
from drivers.camera import FrameBatch, TriggerSource
from drivers.capabilities import readout_s
from drivers.errors import DeviceDisconnected, DeviceError, DeviceTimeout, InvalidPattern, InvalidSetting, UnsupportedFeature

T = TypeVar("T")

#: ``on_fault(kind, message, first_index)``: kind is "timeout", "device_error", "disconnect" or
#: "reconnect_failed"; first_index is the data-set index of the first input concerned (-1: none)
FaultHandler = Callable[[str, str, int], None]


def ignore_faults(kind: str, message: str, first_index: int) -> None:
    """Default fault handler: the acquirer still counts them in ``faults``."""


class AcquisitionFailed(DeviceError):
    """Frames could not be captured within the allowed attempts (the device named failed last)."""


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts in a row before giving up, and the exponential backoff between them."""

    attempts: int = 5
    first_backoff_s: float = 0.05
    max_backoff_s: float = 2.0

    def backoff_s(self, failures: int) -> float:
        return min(self.max_backoff_s, self.first_backoff_s * 2**failures)


def frame_timeout_s(bench: Bench) -> float:
    """The one timeout rule, per frame: a second of slack plus four frame periods (exposure, readout
    and the slower SLM's settling), so a slow frame is not taken for a lost one; a sequence of n
    frames waits n times as long."""
    cam = bench.camera
    settle_s = max(bench.input_slm.settle_time_s, bench.fourier_slm.settle_time_s)
    return 1.0 + 4 * (cam.exposure_s + readout_s(cam) + settle_s)


class Acquirer:
    """Shows patterns on a bench and captures their frames, robust to the bench's faults.

    ``mask`` (Fourier-SLM gray levels) and the input pattern are shown lazily, with retries, by the
    next capture that needs them; a pattern counts as shown only once its write succeeded, so a
    failed write (or a reopened SLM) is followed by the write again. Patterns are compared by
    identity: pass a new array to show a new pattern.
    """

    def __init__(self, bench: Bench, mask: np.ndarray | None = None, policy: RetryPolicy | None = None,
                 on_fault: FaultHandler = ignore_faults) -> None:
        self.bench = bench
        self.policy = policy or RetryPolicy()
        self.on_fault = on_fault
        self.faults = 0
        self._mask, self._mask_shown = mask, False
        self._input: np.ndarray | None = None
        self._input_shown = False
        self._hardware: bool | None = None  # hardware-triggered input sequences possible (None: not asked yet)
        self._chunk = 0  # inputs shown per attempt; adapts to the fault rate (0: whole batches)
        self._after_failure = False

    # -- what the bench shows ---------------------------------------------------------------------------
    def set_mask(self, gray: np.ndarray) -> None:
        """Show ``gray`` on the Fourier SLM from the next capture on."""
        if gray is not self._mask:
            self._mask, self._mask_shown = gray, False

    def set_input(self, amplitude: np.ndarray) -> None:
        """Show ``amplitude`` (rows, cols) in [0, 1] on the input modulator from the next capture on."""
        if amplitude is not self._input:
            self._input, self._input_shown = amplitude, False

    # -- captures ---------------------------------------------------------------------------------------
    def frames(self, n: int = 1, what: str = "frame") -> np.ndarray:
        """``n`` software-triggered frames (n, rows, cols) of what the bench shows now, each retried."""
        return np.stack([self._retrying(self._one_frame, f"{what} ({i + 1} of {n})") for i in range(n)])

    def capture_masks(self, grays: Iterable[np.ndarray], frames_each: int = 1, what: str = "Fourier pattern") -> np.ndarray:
        """Show each Fourier-SLM gray pattern of ``grays`` (any iterable) at the current input and average
        ``frames_each`` frames: (n, rows, cols) float32."""
        out = []
        for k, gray in enumerate(grays):
            self.set_mask(gray)
            out.append(self.frames(frames_each, f"{what} {k}").mean(axis=0, dtype=np.float64).astype(np.float32))
        return np.stack(out)

    def dark_frames(self, n: int) -> np.ndarray:
        """``n`` frames with the beam blocked by the shutter, or with the input modulator dark where there
        is none (the input pattern is shown again afterwards)."""
        shutter = self.bench.shutter
        if shutter is not None:
            shutter.block_beam()
            try:
                return self.frames(n, "dark frame")
            finally:
                shutter.open_beam()
        lit = self._input
        self.set_input(np.zeros(self.bench.input_slm.grid.shape))
        try:
            return self.frames(n, "dark frame")
        finally:
            if lit is not None:
                self.set_input(lit)

    def capture(self, amplitudes: np.ndarray, first_index: int = -1, what: str = "set-up frames") -> FrameBatch:
        """Frames for input amplitudes (n, rows, cols) in [0, 1] under the mask, in order, one per input.

        ``first_index``: data-set index of the first input (named in fault reports; -1 for frames that
        are not data-set inputs, then called ``what``). Captured in chunks: a chunk that fails is
        shown again at half the size (a missed trigger in a long sequence costs little), and the chunk
        size grows back after successes. A chunk that fails ``policy.attempts`` times in a row at its
        smallest size raises AcquisitionFailed; what was captured before is kept by the caller.
        """
        n = amplitudes.shape[0]
        parts: list[FrameBatch] = []
        start, chunk = 0, min(self._chunk or n, n)
        failures = 0
        last_error: DeviceError | None = None
        while start < n:
            piece = amplitudes[start : start + chunk]
            label = f"input {first_index + start}" if first_index >= 0 else what
            try:
                parts.append(self._capture_once(piece))
                start += piece.shape[0]
                failures = 0
                chunk = min(2 * chunk, n)
                continue
            except (InvalidPattern, InvalidSetting, UnsupportedFeature):
                raise  # a refused input or setting: showing it again cannot help
            except DeviceError as exc:
                # a link that keeps dropping counts whatever the chunk size; other faults at size 1 only
                counts = isinstance(exc, DeviceDisconnected) or chunk == 1
                failures += counts
                last_error = self._recover(exc, label, failures if counts else failures + 1,
                                           first_index + start if first_index >= 0 else -1)
                if not isinstance(exc, DeviceDisconnected):
                    chunk = max(1, chunk // 2)
            if failures >= self.policy.attempts:
                raise self._failed(label, failures, last_error)
            time.sleep(self.policy.backoff_s(failures))
        self._chunk = chunk
        self._input, self._input_shown = amplitudes[-1], True
        return parts[0] if len(parts) == 1 else _concat(parts)

    # -- one attempt ------------------------------------------------------------------------------------
    def _one_frame(self) -> np.ndarray:
        cam = self.bench.camera
        self._use_trigger(TriggerSource.SOFTWARE)
        self._ready(show_input=True)
        lost = cam.frames_lost
        frame = cam.capture(timeout_s=frame_timeout_s(self.bench)).data
        self._check_lost(lost)
        return frame

    def _capture_once(self, amplitudes: np.ndarray) -> FrameBatch:
        cam, inp = self.bench.camera, self.bench.input_slm
        hardware = self._hardware_trigger()
        self._ready(show_input=False)
        lost = cam.frames_lost
        timeout_s = frame_timeout_s(self.bench)
        if hardware:
            batches = []
            for start in range(0, amplitudes.shape[0], inp.sequence_limit):
                chunk = amplitudes[start : start + inp.sequence_limit]
                inp.write_amplitude(chunk)
                batches.append(cam.read_frames(chunk.shape[0], timeout_s=timeout_s * chunk.shape[0]))
            frames = batches[0] if len(batches) == 1 else _concat(batches)
        else:
            singles = []
            for image in amplitudes:
                inp.write_amplitude(image)
                singles.append(cam.capture(timeout_s=timeout_s))
            frames = FrameBatch.stack(singles)
        self._check_lost(lost)
        return frames

    def _hardware_trigger(self) -> bool:
        """Put the camera in the trigger mode of input sequences: hardware where both devices offer it."""
        if self._hardware is None:
            self._hardware = False
            if self.bench.input_slm.sequence_limit > 1:
                try:
                    self._use_trigger(TriggerSource.HARDWARE)
                    self._hardware = True
                except UnsupportedFeature:
                    pass
        self._use_trigger(TriggerSource.HARDWARE if self._hardware else TriggerSource.SOFTWARE)
        return self._hardware

    def _use_trigger(self, source: TriggerSource) -> None:
        cam = self.bench.camera
        if cam.trigger_source is not source:
            cam.trigger_source = source

    def _ready(self, show_input: bool) -> None:
        """Show what is not shown yet; after a failure let stray frames land, then drop every unread one."""
        cam = self.bench.camera
        if self._mask is not None and not self._mask_shown:
            self.bench.fourier_slm.write_gray(self._mask)
            self._mask_shown = True
        if show_input and self._input is not None and not self._input_shown:
            self.bench.input_slm.write_amplitude(self._input)
            self._input_shown = True
        if self._after_failure:
            time.sleep(cam.exposure_s + readout_s(cam))
            self._after_failure = False
        cam.discard_unread()

    def _check_lost(self, lost_before: int) -> None:
        cam = self.bench.camera
        if cam.frames_lost != lost_before:
            raise DeviceTimeout(cam.name, f"{cam.frames_lost - lost_before} frame(s) lost from the camera buffer")

    # -- recovery ---------------------------------------------------------------------------------------
    def _retrying(self, step: Callable[[], T], what: str) -> T:
        """``step()``, repeated after each device fault until it succeeds or fails ``attempts`` times in a row."""
        failures = 0
        last_error: DeviceError | None = None
        while True:
            try:
                return step()
            except (InvalidPattern, InvalidSetting, UnsupportedFeature):
                raise
            except DeviceError as exc:
                failures += 1
                last_error = self._recover(exc, what, failures, -1)
            if failures >= self.policy.attempts:
                raise self._failed(what, failures, last_error)
            time.sleep(self.policy.backoff_s(failures))

    def _recover(self, exc: DeviceError, what: str, failure: int, first_index: int) -> DeviceError:
        """Report the fault and make the next attempt possible: reopen a dropped device. (An SLM fails
        only while writing, so its pattern is never marked shown then, and is written again.) Returns
        the error that stands (a failed reopen's)."""
        disconnected = isinstance(exc, DeviceDisconnected)
        kind = "disconnect" if disconnected else "timeout" if isinstance(exc, DeviceTimeout) else "device_error"
        self._report(kind, f"{what} (failure {failure} in a row): {exc}", first_index)
        if not disconnected:
            return exc
        try:
            self._reconnect(exc.device)
        except DeviceError as reopen_error:
            self._report("reconnect_failed", f"{what} (failure {failure} in a row): {reopen_error}", first_index)
            return reopen_error
        return exc

    def _report(self, kind: str, message: str, first_index: int) -> None:
        self.faults += 1
        self._after_failure = True
        self.on_fault(kind, message, first_index)

    def _reconnect(self, device_name: str) -> None:
        """Close and reopen the device; the camera keeps its exposure, gain and trigger source."""
        device = self.bench.devices.get(device_name)
        if device is None:
            return
        cam = self.bench.camera
        if device is cam:
            exposure_s, gain, source = cam.exposure_s, cam.gain, cam.trigger_source
            cam.close()
            cam.open()
            cam.exposure_s = exposure_s
            if gain is not None:
                cam.gain = gain
            cam.trigger_source = source
        else:
            device.close()
            device.open()

    def _failed(self, what: str, failures: int, last_error: DeviceError | None) -> AcquisitionFailed:
        device = last_error.device if last_error is not None else self.bench.camera.name
        return AcquisitionFailed(device, f"{what} failed {failures} times in a row; last error: {last_error}")


def _concat(batches: list[FrameBatch]) -> FrameBatch:
    return FrameBatch(
        data=np.concatenate([b.data for b in batches]),
        frame_numbers=np.concatenate([b.frame_numbers for b in batches]),
        timestamps_s=np.concatenate([b.timestamps_s for b in batches]),
        exposure_s=batches[-1].exposure_s,
        gain=batches[-1].gain,
    )
