"""Errors about run records (HDF5 files written by ``labctl run``)."""

from __future__ import annotations

from drivers.errors import LabctlError


class RunRecordError(LabctlError, RuntimeError):
    """The run file is missing, of another format, damaged, or does not match the run being resumed.

    The message names the file (and the column or attribute where one is at fault)."""


class RecordLockedError(RunRecordError):
    """Another process holds (or may hold) the record's writer lock."""
