"""A laser on a serial port (Coherent OBIS command set) used as the bench's beam switch.

Emission on/off is the shutter role (``open_beam`` / ``block_beam``); ``power_w`` sets the output
power within the head's limit. Every reply ends in ``OK``, or ``ERR-nnn`` when the laser refused.
"""

from __future__ import annotations

import math

from drivers.capabilities import FirmwareIdentity
from drivers.device import DeviceInfo
from drivers.errors import DeviceError, InvalidSetting
from drivers.instruments import Shutter
from drivers.serial_link import OnSerialPort, SerialLink, SerialSettings

EOL = b"\r\n"


class ObisLaser(OnSerialPort, Shutter, FirmwareIdentity):
    """OBIS laser at ``port`` (pyserial URL); ``power_w`` is set on open when given."""

    def __init__(self, name: str, port: str, power_w: float | None = None, baudrate: int = 115200,
                 timeout_s: float = 1.0, hwid: str | None = None) -> None:
        super().__init__(name)
        self._link = SerialLink(name, SerialSettings(port, baudrate, timeout_s, timeout_s, hwid))
        self._initial_power_w = power_w
        self._identity = ""
        self._serial = ""
        self._max_power_w = 0.0

    @property
    def info(self) -> DeviceInfo:
        parts = [p.strip() for p in self._identity.split(" - ")]
        model = parts[1] if len(parts) > 1 else "OBIS"
        return DeviceInfo(driver="obis_laser", vendor="Coherent", model=model, serial=self._serial)

    @property
    def firmware(self) -> str:
        parts = [p.strip() for p in self._identity.split(" - ")]
        return parts[2] if len(parts) > 2 else ""

    def command(self, command: str) -> str:
        """Send one command; return the reply line before ``OK`` ("" for set commands)."""
        message = command.encode() + EOL
        self._link.send(message)
        lines: list[bytes] = []
        while True:
            line = self._link.read_until(EOL, message)[: -len(EOL)]
            if line == b"OK":
                return b"\n".join(lines).decode(errors="replace")
            if line.startswith(b"ERR"):
                raise DeviceError(self.name, f"{self.address} refused {command!r} with {line.decode()}; check the "
                                  "value against the laser's limits and that it is in remote mode")
            lines.append(line)
            if len(lines) > 4:
                raise DeviceError(self.name, f"{self.address}: no OK after {command!r} (got {lines!r})")

    def _identify(self) -> None:
        self._identity = self.command("*IDN?")
        self._serial = self.command("SYST:INF:SNUM?")
        self._max_power_w = float(self.command("SOUR:POW:LIM:HIGH?"))
        if self._initial_power_w is not None:
            self.power_w = self._initial_power_w

    @property
    def max_power_w(self) -> float:
        return self._max_power_w

    @property
    def power_w(self) -> float:
        self._require_open()
        return float(self.command("SOUR:POW:LEV:IMM:AMPL?"))

    @power_w.setter
    def power_w(self, watts: float) -> None:
        if not (isinstance(watts, (int, float)) and math.isfinite(watts) and 0 <= watts <= self._max_power_w):
            raise InvalidSetting(self.name, f"laser power {watts!r} W outside [0, {self._max_power_w:g}] W")
        self.command(f"SOUR:POW:LEV:IMM:AMPL {watts:.5f}")

    @property
    def beam_open(self) -> bool:
        self._require_open()
        state = self.command("SOUR:AM:STAT?")
        if state not in ("ON", "OFF"):
            raise DeviceError(self.name, f"{self.address} answered {state!r} to emission query; expected ON or OFF")
        return state == "ON"

    def open_beam(self) -> None:
        self._require_open()
        self.command("SOUR:AM:STAT ON")

    def block_beam(self) -> None:
        self._require_open()
        self.command("SOUR:AM:STAT OFF")
