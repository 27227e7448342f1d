"""The run loop: batches of inputs through the bench, in two threads.

The capture thread shows batch k+1, waits for its frames and runs the frame processor (correction,
tile readout, back end: a few milliseconds a batch) while the main thread records batch k to HDF5.
The processor runs in the capture thread because its small tensor operations would otherwise fight
the simulator's (or a driver's) own threads for the CPU. Ctrl-C (or ``stop``) ends the run after the
batch being recorded; finished batches are already on disk.

With a drift monitor (:mod:`labctl.runner.drift`) the capture thread also checks the bench's response
before every few batches and once after the last; it hands each check to the main thread to record,
and stops (before the next input) at a change no readout correction can undo.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from calibration.acquisition import Acquirer
from drivers.camera import FrameBatch
from labctl.records.run_record import Column, RunRecord
from labctl.runner.drift import DriftCheck, DriftMonitor
from labctl.runner.multiplex import capture_groups


class FrameProcessor(Protocol):
    """Camera frames → per-input results (e.g. dark/flat correction, tile crop, back end)."""

    columns: list[Column]

    def __call__(self, frames: np.ndarray) -> dict[str, np.ndarray]: ...


@dataclass
class RunSummary:
    processed: int
    skipped_done: int
    faults: int
    seconds: float
    interrupted: bool
    stop_reason: str = ""  # why the run stopped before its end, when not by the operator

    @property
    def frames_per_s(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0


def pending_batches(done: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Indices not yet done, in order, in batches."""
    todo = np.flatnonzero(~done)
    for start in range(0, todo.size, batch_size):
        yield todo[start : start + batch_size]


_END = object()


def run_inputs(
    acquirer: Acquirer,
    encode: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    labels: np.ndarray | None,
    processor: FrameProcessor,
    record: RunRecord,
    batch_size: int,
    on_batch: Callable[[int], None] = lambda n: None,
    stop: threading.Event | None = None,
    group_gray: Sequence[np.ndarray] | None = None,
    monitor: DriftMonitor | None = None,
) -> RunSummary:
    """Process every input not yet marked done in ``record``; each is recorded exactly once.

    ``group_gray``: the (rows, cols) masks of multiplexed channel groups, each input captured
    under every one (:func:`capture_groups`); None: the acquirer's one mask. ``monitor``: drift
    checks between batches; its column (the correction epoch) is added to every batch's values."""
    stop = stop or threading.Event()
    done = record.done
    skipped = int(done.sum())
    captured: queue.Queue = queue.Queue(maxsize=2)
    capture_error: list[BaseException] = []
    pending_events: queue.SimpleQueue[tuple[str, str, int]] = queue.SimpleQueue()

    def hand_over(item: object) -> bool:
        """Put ``item`` for the main thread; False if the run was stopped meanwhile."""
        while not stop.is_set():
            try:
                captured.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def capture_worker() -> None:
        try:
            inputs_done = skipped
            for number, idx in enumerate(pending_batches(done, batch_size)):
                if stop.is_set():
                    return
                if monitor is not None and monitor.due(number):
                    check = monitor.check(int(idx[0]), inputs_done)
                    if not hand_over(check) or check.uncorrectable:
                        return
                amplitudes = encode(images[idx])
                frames = (acquirer.capture(amplitudes, first_index=int(idx[0])) if group_gray is None
                          else capture_groups(acquirer, group_gray, amplitudes, int(idx[0])))
                values = processor(frames.data.astype(np.float32))
                if monitor is not None:
                    values[monitor.column.name] = np.full(idx.size, monitor.epoch, dtype=np.int32)
                if not hand_over((idx, frames, values)):
                    return
                inputs_done += idx.size
            if monitor is not None and monitor.settings.enabled and inputs_done > skipped:
                hand_over(monitor.check(-1, inputs_done))  # how far the response went during the last batches
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            capture_error.append(exc)
        finally:
            hand_over(_END)

    acquirer.on_fault = lambda kind, message, first_index=-1: pending_events.put((kind, message, first_index))
    processed, interrupted, stop_reason = 0, False, ""
    start = time.perf_counter()
    worker = threading.Thread(target=capture_worker, name="labctl-capture", daemon=True)
    worker.start()
    try:
        while True:
            try:
                item = captured.get(timeout=0.2)
            except queue.Empty:
                if not worker.is_alive() and captured.empty():
                    break
                _flush_events(record, pending_events)
                continue
            _flush_events(record, pending_events)
            if item is _END:
                break
            if isinstance(item, DriftCheck):
                DriftMonitor.record(record, item)
                stop_reason = f"drift: {item.uncorrectable}" if item.uncorrectable and item.first_index >= 0 else stop_reason
                continue
            idx, frames, values = item
            values.update(_frame_metadata(frames))
            if labels is not None:
                values["label"] = labels[idx]
            record.write_batch(idx, values, frames=frames.data)
            processed += idx.size
            on_batch(idx.size)
            if stop.is_set():
                break
    except KeyboardInterrupt:
        interrupted = True
        record.log_event("interrupted", "stopped by the operator (Ctrl-C); resume with --resume")
    finally:
        stop.set()
        worker.join(timeout=60)
        _flush_events(record, pending_events)
    if capture_error:
        record.log_event("aborted", f"{type(capture_error[0]).__name__}: {capture_error[0]}")
        raise capture_error[0]
    remaining = int((~record.done).sum())
    return RunSummary(processed, skipped, acquirer.faults, time.perf_counter() - start, interrupted or remaining > 0, stop_reason)


def _flush_events(record: RunRecord, events: queue.SimpleQueue) -> None:
    """Write the capture thread's fault reports (the HDF5 file is only touched from this thread)."""
    while not events.empty():
        kind, message, first_index = events.get()
        record.log_event(kind, message, first_index)


def _frame_metadata(frames: FrameBatch) -> dict[str, np.ndarray]:
    n = len(frames)
    return {
        "frame_number": frames.frame_numbers,
        "timestamp_s": frames.timestamps_s,
        "exposure_s": np.full(n, frames.exposure_s),
    }


#: Columns every run records besides the processor's.
METADATA_COLUMNS = [Column("frame_number", (), "i8"), Column("timestamp_s", (), "f8"), Column("exposure_s", (), "f8")]
