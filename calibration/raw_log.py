"""Raw measurements of a calibration, kept on disk whatever happens, and its progress callback.

The log also keeps the acquisition faults the calibration recovered from (:meth:`RawLog.fault`, the
acquirer's ``on_fault``), as a run record keeps a run's events: ``faults`` in the ``.npz`` holds
one line per fault.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from calibration.errors import CalibrationError

Progress = Callable[[str, float], None]


def no_progress(message: str, fraction: float) -> None:
    """Default progress callback: silent."""


class RawLog:
    """Raw measurements of one calibration, saved to ``<out_dir>/raw/<name>.npz``."""

    def __init__(self, out_dir: str | Path, name: str) -> None:
        self.path = Path(out_dir) / "raw" / f"{name}.npz"
        self.arrays: dict[str, np.ndarray] = {}
        self.faults: list[tuple[str, str]] = []

    def add(self, key: str, value: np.ndarray | float | list) -> None:
        self.arrays[key] = np.asarray(value)

    def fault(self, kind: str, message: str, first_index: int = -1) -> None:
        """An acquisition fault the calibration recovered from (an :class:`~calibration.acquisition.Acquirer`'s
        ``on_fault``)."""
        self.faults.append((kind, message))
        self.arrays["faults"] = np.array([f"{k}: {m}" for k, m in self.faults])

    def fault_counts(self) -> dict[str, int]:
        """Faults by kind (timeout, disconnect, device_error, reconnect_failed), for the record's params."""
        return dict(Counter(kind for kind, _ in self.faults))

    def save(self) -> str:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(self.path, **self.arrays)
        return str(self.path)


@contextmanager
def kept_on_failure(log: RawLog) -> Iterator[RawLog]:
    """Save the raw log on the way out, and name it in a calibration error's message."""
    try:
        yield log
    except Exception as exc:
        path = log.save()
        if isinstance(exc, CalibrationError) and exc.raw_path is None:
            exc.raw_path = path
            exc.args = (f"{exc.args[0]} (raw measurements kept in {path})",)
        raise
    log.save()
