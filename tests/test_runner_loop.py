"""The run loop: every input recorded exactly once, through faults, interruptions and resumes."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from drivers.bench import BenchSpec
from labctl.records.run_record import Column, RunRecord, RunRecordError
from calibration.acquisition import AcquisitionFailed, Acquirer, RetryPolicy
from labctl.runner.loop import METADATA_COLUMNS, run_inputs
from tests.conftest import bench_toml

FAST = RetryPolicy(attempts=4, first_backoff_s=0.0, max_backoff_s=0.0)


class MeanProcessor:
    """Per-input mean of the frame: enough to tell inputs apart and to check the pairing."""

    columns = [Column("mean_dn", (), "f8")]

    def __call__(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        return {"mean_dn": frames.mean(axis=(1, 2))}


def _images(n: int, shape: tuple[int, int]) -> np.ndarray:
    """Inputs whose brightness encodes their index, so a frame can be matched to its input."""
    levels = np.linspace(0.2, 1.0, n)
    return np.broadcast_to(levels[:, None, None], (n, *shape)).astype(np.float32)


def _bench(extra_camera: str = "", extra_fourier: str = ""):
    """The ideal bench, exposed so that the brightest input stays below full scale."""
    text = bench_toml(ideal=True, noise=False, extra_camera="exposure_s = 1e-4\n" + extra_camera)
    text = text.replace("pitch_m = 16e-6", "pitch_m = 16e-6\n" + extra_fourier)
    return BenchSpec.from_toml(text).open()


def _record(path: Path, n: int, frame_shape=None) -> RunRecord:
    return RunRecord.create(path, n, MeanProcessor.columns + METADATA_COLUMNS + [Column("label", (), "i8")],
                            {"test": True}, frame_shape=frame_shape)


def _run(bench, record, n, batch=8, stop=None, on_batch=lambda k: None, policy=FAST):
    flat = np.zeros(bench.fourier_slm.grid.shape, np.uint16)
    acquirer = Acquirer(bench, flat, policy)
    images = _images(n, bench.input_slm.grid.shape)
    return run_inputs(acquirer, lambda x: x, images, np.arange(n), MeanProcessor(), record, batch, on_batch=on_batch, stop=stop)


def test_every_input_is_recorded_once_in_order_with_frame_metadata(tmp_path: Path) -> None:
    n = 20
    with _bench() as bench:
        rec = _record(tmp_path / "run.h5", n, frame_shape=bench.camera.grid.shape)
        summary = _run(bench, rec, n)
        rec.close()
    assert summary.processed == n and not summary.interrupted
    with RunRecord.open(tmp_path / "run.h5") as rec:
        assert rec.done.all()
        assert np.array_equal(rec.column("label"), np.arange(n))
        means = rec.column("mean_dn")
        assert np.all(np.diff(means) > 0), "brighter inputs must give brighter frames, in input order"
        numbers = rec.column("frame_number")
        assert len(set(numbers.tolist())) == n
        assert rec.frames(slice(0, 2)).shape == (2, *bench.camera.grid.shape)
        assert np.all(rec.column("exposure_s") > 0)


def test_faults_are_retried_logged_and_nothing_is_lost(tmp_path: Path) -> None:
    n = 40
    with _bench("missed_trigger_rate = 0.1\ndisconnect_at_frames = [17]", "write_failure_at = [0]") as bench:
        rec = _record(tmp_path / "run.h5", n)
        summary = _run(bench, rec, n)
        events = rec.events()
        done = rec.done
        rec.close()
        injected = bench.camera.faults_injected
    assert done.all() and summary.processed == n
    kinds = {e["kind"] for e in events}
    assert "disconnect" in kinds and "timeout" in kinds and "device_error" in kinds
    assert injected["disconnects"] == 1 and injected["missed_triggers"] >= 1
    assert summary.faults == len(events)


def test_stopped_run_resumes_and_ends_with_each_input_once(tmp_path: Path) -> None:
    n = 30
    path = tmp_path / "run.h5"
    stop = threading.Event()
    seen = []

    def after_batch(k: int) -> None:
        seen.append(k)
        if sum(seen) >= 10:
            stop.set()

    with _bench() as bench:
        rec = _record(path, n)
        first = _run(bench, rec, n, batch=5, stop=stop, on_batch=after_batch)
        first_done = rec.done.copy()
        rec.close()
        assert first.interrupted and 10 <= first_done.sum() < n
        with RunRecord.open(path, "r+") as rec:
            second = _run(bench, rec, n, batch=5)
            done = rec.done
            numbers = rec.column("frame_number")
    assert second.skipped_done == first_done.sum()
    assert second.processed == n - first_done.sum()
    assert done.all() and len(set(numbers.tolist())) == n


def test_a_camera_that_never_answers_fails_the_batch_after_bounded_retries(tmp_path: Path) -> None:
    with _bench("missed_trigger_rate = 0.99") as bench:
        rec = _record(tmp_path / "run.h5", 8)
        with pytest.raises(AcquisitionFailed, match="failed 4 times in a row"):
            _run(bench, rec, 8, batch=8)
        events = rec.events()
        rec.close()
    # the chunk is halved 8 -> 4 -> 2 -> 1, then single inputs are tried 4 times
    assert [e["kind"] for e in events].count("timeout") == 3 + 4
    assert events[-1]["kind"] == "aborted"


def test_existing_run_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    _record(path, 3).close()
    with pytest.raises(RunRecordError, match="exists.*--resume"):
        _record(path, 3)
    path2 = tmp_path / "other.h5"
    path2.write_text("not hdf5")
    with pytest.raises(RunRecordError, match="not a readable HDF5"):
        RunRecord.open(path2)
