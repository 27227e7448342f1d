"""The error training raises for settings it cannot run with."""

from __future__ import annotations

from drivers.errors import LabctlError


class TrainingSettingsError(LabctlError, ValueError):
    """A training setting (epochs, learning rate, KD temperature, student kind...) is out of range."""
