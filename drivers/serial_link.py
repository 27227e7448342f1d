"""A command/reply link to an instrument on a serial port, with the care real ports need.

Ports are pyserial URLs (``/dev/ttyUSB0``, ``COM3``, ``rfc2217://host:port``, ``labsim://sc10`` for
the in-memory simulators of :mod:`drivers.sim`) opened with ``serial_for_url`` and exclusive access.
Before each command the input buffer is reset (a stale reply must not answer the new command); a
reply that does not end in the expected terminator within the timeout is a short read and raises
:class:`DeviceTimeout` (pyserial returns short data silently); writes have a timeout; a port that
vanishes raises :class:`DeviceDisconnected`. ``reconnect()`` finds the port again, by USB hardware
id when one is given (a re-plugged adapter may come back under another name).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drivers.errors import DeviceBusy, DeviceDisconnected, DeviceNotFound, DeviceTimeout

#: package holding pyserial URL handlers (``protocol_<scheme>`` modules) of our simulators
SIM_HANDLER_PACKAGE = "drivers.sim"


@dataclass(frozen=True)
class SerialSettings:
    url: str
    baudrate: int = 9600
    timeout_s: float = 1.0
    write_timeout_s: float = 1.0
    hwid: str | None = None  # e.g. "VID:PID=1313:8019 SER=M00412345" to re-find a re-plugged adapter


class SerialLink:
    """One open serial port; every method maps pyserial failures onto our exceptions."""

    def __init__(self, device: str, settings: SerialSettings) -> None:
        self._device = device
        self.settings = settings
        self._port: Any = None
        self._url = settings.url

    @property
    def address(self) -> str:
        return self._url

    @property
    def is_open(self) -> bool:
        return self._port is not None

    def open(self) -> None:
        import serial

        if SIM_HANDLER_PACKAGE not in serial.protocol_handler_packages:
            serial.protocol_handler_packages.append(SIM_HANDLER_PACKAGE)
        s = self.settings
        try:
            self._port = serial.serial_for_url(
                self._url, baudrate=s.baudrate, timeout=s.timeout_s, write_timeout=s.write_timeout_s, exclusive=True
            )
        except serial.SerialException as exc:
            text = str(exc)
            if "busy" in text.lower() or "lock" in text.lower():
                raise DeviceBusy(self._device, f"port {self._url} is in use ({text}); close the other program or "
                                 "labctl session that holds it") from exc
            raise DeviceNotFound(self._device, f"cannot open port {self._url} ({text}); check the cable and the port "
                                 "name (python -m serial.tools.list_ports -v)") from exc
        except ValueError as exc:
            raise DeviceNotFound(self._device, f"bad port URL {self._url!r} ({exc}); see pyserial's URL handlers") from exc

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except Exception:  # noqa: BLE001 - a vanished port cannot be closed cleanly; it is released anyway
                pass

    def reconnect(self) -> None:
        """Close, find the port again (by hardware id if known) and reopen it."""
        self.close()
        if self.settings.hwid:
            from serial.tools import list_ports

            matches = list(list_ports.grep(self.settings.hwid))
            if not matches:
                raise DeviceNotFound(self._device, f"no serial port with hardware id {self.settings.hwid!r} (was "
                                     f"{self._url}); plug the adapter back in")
            self._url = matches[0].device
        self.open()

    def _need(self) -> Any:
        if self._port is None:
            raise DeviceDisconnected(self._device, f"port {self._url} is not open; call open() first")
        return self._port

    def send(self, message: bytes) -> None:
        """Reset the input buffer, then write ``message`` completely (or raise)."""
        import serial

        port = self._need()
        try:
            port.reset_input_buffer()
            written = port.write(message)
            port.flush()
        except serial.SerialTimeoutException as exc:
            raise DeviceTimeout(self._device, f"write of {message!r} to {self._url} timed out after "
                                f"{self.settings.write_timeout_s:g} s; check flow control and that the device is on") from exc
        except (serial.SerialException, OSError) as exc:
            self.close()
            raise DeviceDisconnected(self._device, f"port {self._url} failed during write of {message!r} ({exc}); "
                                     "check the cable, then reconnect()") from exc
        if written is not None and written != len(message):
            raise DeviceTimeout(self._device, f"only {written} of {len(message)} bytes of {message!r} written to {self._url}")

    def read_until(self, terminator: bytes, command: bytes) -> bytes:
        """Read up to and including ``terminator``; a short read raises DeviceTimeout."""
        import serial

        port = self._need()
        try:
            data = port.read_until(terminator)
        except (serial.SerialException, OSError) as exc:
            self.close()
            raise DeviceDisconnected(self._device, f"port {self._url} failed while reading the reply to {command!r} "
                                     f"({exc}); check the cable, then reconnect()") from exc
        if not data.endswith(terminator):
            what = "no reply" if not data else f"a reply cut short ({data!r})"
            raise DeviceTimeout(self._device, f"{what} to {command!r} on {self._url} within {self.settings.timeout_s:g} s; "
                                "check that the device is powered and the baud rate matches")
        return data


class OnSerialPort:
    """Connection handling for a :class:`~drivers.device.Device` that talks through ``self._link``:
    open the port, then ask the instrument who it is (:meth:`_identify`), closing the port again if
    that fails; ``reconnect()`` finds the port again (by hardware id if given) and reopens it.
    List it before the device base class."""

    _link: SerialLink
    _is_open: bool

    @property
    def address(self) -> str:
        return self._link.address

    def _identify(self) -> None:
        """First exchange after the port opens (identity, limits, initial settings)."""
        raise NotImplementedError

    def _connect(self) -> None:
        self._link.open()
        try:
            self._identify()
        except BaseException:
            self._link.close()
            raise

    def _disconnect(self) -> None:
        self._link.close()

    def reconnect(self) -> None:
        self._link.reconnect()
        self._is_open = True
