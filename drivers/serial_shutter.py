"""Beam shutter on a serial port, speaking the Thorlabs SC10 command set.

The SC10 echoes each command, then sends its reply and a ``> `` prompt. ``ens`` *toggles* the
enable state, so the driver reads the state first and toggles only when needed, then reads it back.
"""

from __future__ import annotations

from drivers.capabilities import FirmwareIdentity
from drivers.device import DeviceInfo
from drivers.errors import DeviceError
from drivers.instruments import Shutter
from drivers.serial_link import OnSerialPort, SerialLink, SerialSettings

PROMPT = b"> "


class SerialShutter(OnSerialPort, Shutter, FirmwareIdentity):
    """SC10-style shutter controller at ``port`` (a pyserial URL, e.g. ``/dev/ttyUSB0`` or ``labsim://sc10``)."""

    def __init__(self, name: str, port: str, baudrate: int = 9600, timeout_s: float = 1.0, hwid: str | None = None) -> None:
        super().__init__(name)
        self._link = SerialLink(name, SerialSettings(port, baudrate, timeout_s, timeout_s, hwid))
        self._identity = ""

    @property
    def info(self) -> DeviceInfo:
        model, _, version = self._identity.partition(" VERSION ")
        return DeviceInfo(driver="serial_shutter", vendor="Thorlabs", model=model or "SC10", serial=self.address)

    @property
    def firmware(self) -> str:
        return self._identity.partition(" VERSION ")[2]

    def query(self, command: str) -> str:
        """Send one command; return its reply text (without echo and prompt)."""
        message = command.encode() + b"\r"
        self._link.send(message)
        data = self._link.read_until(PROMPT, message)
        echo, _, body = data[: -len(PROMPT)].partition(b"\r")
        if echo != command.encode():
            raise DeviceError(self.name, f"{self.address} echoed {echo!r} to {command!r}; check the baud rate and "
                              "that nothing else writes to the port")
        reply = body.decode(errors="replace").strip()
        if reply == "CMD_NOT_DEFINED":
            raise DeviceError(self.name, f"{self.address} does not know the command {command!r}; is this an SC10?")
        return reply

    def _identify(self) -> None:
        self._identity = self.query("id?")

    @property
    def beam_open(self) -> bool:
        self._require_open()
        state = self.query("ens?")
        if state not in ("0", "1"):
            raise DeviceError(self.name, f"{self.address} answered {state!r} to 'ens?'; expected 0 or 1")
        return state == "1"

    def _set(self, want_open: bool) -> None:
        self._require_open()
        if self.beam_open != want_open:
            self.query("ens")
            if self.beam_open != want_open:
                raise DeviceError(self.name, f"{self.address}: shutter did not {'open' if want_open else 'close'}; "
                                  "check the interlock and the shutter cable")

    def open_beam(self) -> None:
        self._set(True)

    def block_beam(self) -> None:
        self._set(False)
