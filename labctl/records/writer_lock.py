"""One writer per record, without relying on HDF5's own file locking.

HDF5 locks with ``flock``/``fcntl``, which many sites switch off (``HDF5_USE_FILE_LOCKING=FALSE``
on NFS and Lustre); two writers then corrupt the file. So a writer first creates ``RUN.h5.lock``
beside the record with ``O_CREAT | O_EXCL`` (atomic, also on NFS v3+) holding its host, pid and
the process start time, and removes it when done. A lock whose process is gone — dead or a zombie
on this host, or a pid now used by a process started at another time — is stale and taken over; a
lock from another host cannot be checked and is reported with its holder, for the operator to judge.
"""

from __future__ import annotations

import atexit
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from labctl.records.errors import RecordLockedError


def lock_path(record: Path) -> Path:
    return record.with_name(record.name + ".lock")


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), or None where not available."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # after "pid (comm)": state is field 3, starttime field 22
    return fields[19] if len(fields) > 19 else None


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]


def _alive(holder: dict[str, Any]) -> bool:
    """Whether the process named by a lock on this host still runs (and is the same process)."""
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if _is_zombie(pid):
        return False
    started = holder.get("started")
    return started is None or _start_time(pid) in (None, started)


def _read_holder(path: Path) -> dict[str, Any] | None:
    """The lock's content; None if the lock vanished meanwhile; {} if unreadable (e.g. half written)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    try:
        holder = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return holder if isinstance(holder, dict) else {}


class WriterLock:
    """The writer lock of one record; :meth:`acquire` raises :class:`RecordLockedError` when held."""

    def __init__(self, record: str | Path) -> None:
        self.record = Path(record)
        self.path = lock_path(self.record)
        self._held = False

    def acquire(self, attempts: int = 3) -> None:
        me = {"host": socket.gethostname(), "pid": os.getpid(), "started": _start_time(os.getpid()), "since_unix_s": time.time()}
        for _ in range(attempts):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = _read_holder(self.path)
                if holder is None:
                    continue  # released meanwhile: try again
                self._take_over_if_stale(holder)
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(me, fh)
            self._held = True
            atexit.register(self.release)  # an exception that skips close() still frees the record
            return
        holder = _read_holder(self.path) or {}
        raise RecordLockedError(self._held_message(holder))

    def _take_over_if_stale(self, holder: dict[str, Any]) -> None:
        """Remove the lock if its process is gone on this host; raise if it is (or may be) alive.

        The lock is first renamed to a name of this process's own and compared with what was judged
        stale, so that two processes breaking the same stale lock cannot remove each other's new one.
        """
        if not holder:
            raise RecordLockedError(f"{self.record.name}: its writer lock {self.path} is unreadable; "
                                    "if no labctl process writes it, delete that file")
        if holder.get("host") != socket.gethostname() or _alive(holder):
            raise RecordLockedError(self._held_message(holder))
        aside = self.path.with_name(f"{self.path.name}.stale-{os.getpid()}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        if _read_holder(aside) == holder:
            aside.unlink()
            return
        try:  # another process's fresh lock was moved: put it back unless a third took the place
            os.link(aside, self.path)
        except FileExistsError:
            pass
        aside.unlink()

    def _held_message(self, holder: dict[str, Any]) -> str:
        pid, host = holder.get("pid", "?"), holder.get("host", "?")
        other_host = host != socket.gethostname()
        hint = (f"if that process is gone (it runs on another host, so labctl cannot check), delete {self.path}"
                if other_host else "wait for it to finish or stop it first")
        return f"{self.record.name} is being written by pid {pid} on {host}; {hint}"

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        atexit.unregister(self.release)
        holder = _read_holder(self.path)
        if holder and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
            self.path.unlink(missing_ok=True)

    def holder_message(self) -> str | None:
        """Who writes the record now (a live writer's message), or None."""
        holder = _read_holder(self.path)
        if not holder:
            return None
        if holder.get("host") == socket.gethostname() and not _alive(holder):
            return None
        return self._held_message(holder)
