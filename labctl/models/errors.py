"""The error a model's configuration raises when it cannot be built as asked."""

from __future__ import annotations

from drivers.errors import LabctlError


class ModelConfigError(LabctlError, ValueError):
    """A model setting is out of range or does not fit the data or layout (the message names it)."""
