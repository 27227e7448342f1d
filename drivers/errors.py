"""One exception hierarchy for every device labctl drives.

Every message names the device (``device`` attribute) and what failed, so an operator reading a log
line knows which box on the bench to look at.
"""

from __future__ import annotations

# Re-exported (drivers.errors.LabctlError): device errors and every other layer's share this base.
from labctl_errors import LabctlError as LabctlError


class DeviceError(LabctlError):
    """A device refused, failed or misbehaved."""

    def __init__(self, device: str, message: str) -> None:
        self.device = device
        self.detail = message
        super().__init__(f"{device}: {message}")


class DeviceTimeout(DeviceError):
    """A device did not answer (or deliver a frame) within a finite timeout."""


class DeviceDisconnected(DeviceError):
    """The link to a device was lost, or the device is not open."""


class DeviceNotFound(DeviceError):
    """No device matched the address, serial number or index given."""


class DeviceBusy(DeviceError):
    """The device is already opened by another process or handle."""


class InvalidPattern(DeviceError, ValueError):
    """A pattern for an SLM has the wrong shape, dtype, range or non-finite values.

    Raised before anything is sent to the device.
    """


class InvalidSetting(DeviceError, ValueError):
    """A setting (exposure, gain, wavelength, ...) is outside what the device accepts."""


class UnsupportedFeature(DeviceError):
    """The device does not offer this feature (e.g. gain on a camera without one)."""


class PhaseTableError(LabctlError, ValueError):
    """A gray-level → phase table has the wrong shape or gray levels outside the SLM's range."""


class AmplitudeTableError(LabctlError, ValueError):
    """An amplitude → gray-level table has the wrong shape, non-finite or non-integer entries, gray
    levels outside the modulator's range, or falls somewhere."""


class BenchFileError(LabctlError, ValueError):
    """A bench description file is malformed: missing role, unknown driver, bad arguments."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"bench file {path}: {message}")
