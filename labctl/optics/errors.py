"""The error the optics model raises when asked for what the geometry cannot do."""

from __future__ import annotations

from labctl_errors import LabctlError


class OpticsModelError(LabctlError, ValueError):
    """A readout, twin or propagation setting does not fit the bench geometry (the message says how)."""
