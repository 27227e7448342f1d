"""Errors raised while reading a data set: every message names the spec or file and the problem."""

from __future__ import annotations

from drivers.errors import LabctlError


class DataError(LabctlError, ValueError):
    """A data set could not be loaded: bad spec, missing or malformed file, inconsistent contents."""


class DataSpecError(DataError):
    """The ``--data`` spec is not one labctl knows."""


class DataFileError(DataError):
    """A data file is missing, unreadable or malformed."""

    def __init__(self, path: object, message: str) -> None:
        self.path = str(path)
        super().__init__(f"{path}: {message}")


class DataFitError(DataError):
    """The data set does not fit the model or masks it is to go through (task, channels, classes,
    image size), or holds no test inputs; raised before anything is created or shown."""
