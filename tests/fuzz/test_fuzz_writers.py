"""One writer per record, with HDF5's own file locking off (as on NFS and Lustre): a second writer
is refused naming the first one's pid and host and the record stays intact; stale locks are taken
over; a ``labctl run`` killed with SIGKILL at a random point continues with ``--resume`` and ends
with every input recorded once and the earlier rows unchanged."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from labctl.cli import main
from labctl.records.run_record import RecordLockedError, RunRecord, RunRecordError
from labctl.records.writer_lock import WriterLock
from tests.fuzz.conftest import REPO, RECORD_COLUMNS, make_record, read_all, same

NO_HDF5_LOCKING = {"HDF5_USE_FILE_LOCKING": "FALSE"}
HOST = socket.gethostname()

#: holds RUN.h5 open for writing until told to go on, then writes the rows not yet done
_WRITER = """
import sys
import numpy as np
from labctl.records.run_record import RunRecord
with RunRecord.open(sys.argv[1], "r+") as rec:
    print("holding", flush=True)
    sys.stdin.readline()
    todo = np.flatnonzero(~rec.done)
    rec.write_batch(todo, {c.name: np.ones((todo.size, *c.shape), c.dtype) for c in rec.columns}, frames=np.ones((todo.size, 8, 8), np.uint16))
print("done", flush=True)
"""


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), **NO_HDF5_LOCKING, **extra}


def _start_writer(record: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(record)], cwd=REPO, env=_env(), text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().strip() == "holding", proc.stderr.read()
    return proc


def test_a_second_writer_is_refused_and_the_record_stays_intact(tmp_path: Path, trained, monkeypatch) -> None:
    record = tmp_path / "RUN.h5"
    make_record(record, n=12, done=8)
    first = _start_writer(record)
    try:
        expected = f"RUN.h5 is being written by pid {first.pid} on {HOST}"
        second = subprocess.run(
            [sys.executable, "-c", "import sys\nfrom labctl.records.run_record import RunRecord, RecordLockedError\n"
             "try:\n    RunRecord.open(sys.argv[1], 'r+')\nexcept RecordLockedError as exc:\n    print(exc)\n    sys.exit(3)",
             str(record)], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=60,
        )
        assert second.returncode == 3 and expected in second.stdout, second.stdout + second.stderr
        with pytest.raises(RunRecordError, match="exists"):
            RunRecord.create(record, 12, RECORD_COLUMNS, {})
        monkeypatch.setenv("HDF5_USE_FILE_LOCKING", "FALSE")
        resumed = CliRunner().invoke(main, ["run", "--bench", str(trained.bench_file), "--masks", str(trained.masks),
                                            "--data", "digits", "--resize", "--out", str(record), "--resume"])
        assert resumed.exit_code == 1 and expected in resumed.output, resumed.output
    finally:
        out, err = first.communicate("go\n", timeout=60)
    assert first.returncode == 0 and out.strip() == "done", err
    after = read_all(record)  # every checksum verified
    assert after["done"].all() and not WriterLock(record).path.exists()


def _lock(record: Path, holder: dict | str) -> None:
    WriterLock(record).path.write_text(holder if isinstance(holder, str) else json.dumps(holder))


def _exited_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("holder,message", [
    ({"host": "bench-pc-2", "pid": 4242}, "being written by pid 4242 on bench-pc-2; if that process is gone"),
    ({"host": HOST, "pid": 1}, f"being written by pid 1 on {HOST}; wait for it"),
    ("{not json", "writer lock .*RUN.h5.lock is unreadable"),
    ("", "writer lock .*RUN.h5.lock is unreadable"),
])
def test_a_live_or_unverifiable_lock_refuses_the_writer(tmp_path: Path, holder, message: str) -> None:
    record = tmp_path / "RUN.h5"
    values = make_record(record, n=6)
    _lock(record, holder)
    with pytest.raises(RecordLockedError, match=message):
        RunRecord.open(record, "r+")
    with pytest.raises(RecordLockedError, match=message):
        WriterLock(record).acquire()
    assert WriterLock(record).path.exists() and np.array_equal(read_all(record)["label"], values["label"])


@pytest.mark.parametrize("kind", ["dead pid", "zombie pid", "reused pid"])
def test_a_stale_lock_is_taken_over_and_released(tmp_path: Path, kind: str) -> None:
    record = tmp_path / "RUN.h5"
    make_record(record, n=6)
    zombie = None
    if kind == "dead pid":
        holder = {"host": HOST, "pid": _exited_pid()}
    elif kind == "zombie pid":
        zombie = subprocess.Popen([sys.executable, "-c", "pass"])
        deadline = time.monotonic() + 10
        while Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z" and time.monotonic() < deadline:
            time.sleep(0.02)
        holder = {"host": HOST, "pid": zombie.pid}
    else:  # this very pid, but a process started at another time: the pid was reused
        holder = {"host": HOST, "pid": os.getpid(), "started": "1"}
    _lock(record, holder)
    try:
        with RunRecord.open(record, "r+") as rec:
            mine = json.loads(WriterLock(record).path.read_text())
            assert (mine["pid"], mine["host"]) == (os.getpid(), HOST)
            rec.log_event("note", "took over a stale lock")
        assert not WriterLock(record).path.exists()
    finally:
        if zombie is not None:
            zombie.wait()


def test_the_lock_is_released_when_the_writer_fails(tmp_path: Path) -> None:
    record = tmp_path / "RUN.h5"
    make_record(record, n=6)
    with pytest.raises(RunRecordError, match="every column"), RunRecord.open(record, "r+") as rec:
        rec.write_batch(np.arange(2), {"label": np.zeros(2)})
    assert not WriterLock(record).path.exists()
    held = WriterLock(tmp_path / "NEW.h5")
    held.acquire()
    with pytest.raises(RecordLockedError, match=f"NEW.h5 is being written by pid {os.getpid()} on {HOST}"):
        RunRecord.create(tmp_path / "NEW.h5", 2, RECORD_COLUMNS, {})  # a creator is refused while it is held
    held.release()
    assert not (tmp_path / "NEW.h5").exists() and not held.path.exists()


def _wait_for_rows(record: Path, proc: subprocess.Popen, at_least: int, timeout_s: float = 60) -> int:
    """Rows the running writer has marked done, polled (without HDF5 locking) until ``at_least``."""
    import h5py

    deadline = time.monotonic() + timeout_s
    while proc.poll() is None and time.monotonic() < deadline:  # polled every 10 ms: a batch of 8 takes ~20 ms
        try:
            with h5py.File(record, "r", locking=False) as h5:
                done = int(h5["results/done"][...].sum())
        except (OSError, KeyError):
            done = 0  # not created yet, or caught mid-write
        if done >= at_least:
            return done
        time.sleep(0.01)
    raise AssertionError(f"the run wrote fewer than {at_least} rows: {proc.stderr.read()[-2000:] if proc.poll() is not None else 'timeout'}")


def test_killed_run_resumes_with_every_input_once_and_earlier_rows_unchanged(trained, tmp_path: Path, monkeypatch) -> None:
    """kill -9 at a random point (seeded) of a ``labctl run`` process, then ``labctl run --resume``."""
    record = tmp_path / "RUN.h5"
    args = ["run", "--bench", str(trained.bench_file), "--masks", str(trained.masks), "--data", "digits", "--resize",
            "--out", str(record), "--batch-size", "8", "--limit", "200", "--save-frames"]
    proc = subprocess.Popen([sys.executable, "-c", "from labctl.cli import main; main()", *args], cwd=REPO, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    rows = _wait_for_rows(record, proc, at_least=int(np.random.default_rng(23).integers(16, 120)))  # a random point
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()[-2000:]
    assert WriterLock(record).path.exists()  # left behind by the killed writer: stale
    before = read_all(record)
    done_before = before["done"]
    assert rows <= int(done_before.sum()) < done_before.size, "killed before or after the batches"
    monkeypatch.setenv("HDF5_USE_FILE_LOCKING", "FALSE")
    result = CliRunner().invoke(main, [*args, "--resume"])
    assert result.exit_code == 0, result.output
    after = read_all(record)
    n = after["done"].size
    assert after["done"].all() and n == 200
    assert f"{n - int(done_before.sum())} input(s) this time, {int(done_before.sum())} already done" in result.output
    for name in [c.name for c in RECORD_COLUMNS] + ["frames"]:
        assert np.array_equal(before[name][done_before], after[name][done_before]), name
    assert same({k: before[k] for k in ("readout",)}, {k: after[k] for k in ("readout",)})
    assert not WriterLock(record).path.exists()
