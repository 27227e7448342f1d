"""pyserial URL handler ``labsim://MODEL[/ID]``: a port wired to a simulated instrument.

pyserial finds it as ``drivers.sim.protocol_labsim`` once ``drivers.sim`` is in
``serial.protocol_handler_packages`` (:mod:`drivers.serial_link` adds it).
"""

from __future__ import annotations

from urllib.parse import urlparse

from serial.serialutil import PortNotOpenError, SerialBase, SerialException, SerialTimeoutException

from drivers.sim.serial_bus import SimInstrument, device


class Serial(SerialBase):
    """Replies are produced when a complete command line is written; reads never block."""

    def open(self) -> None:
        if self.is_open:
            raise SerialException("port already open")
        parsed = urlparse(self.portstr)
        address = (parsed.netloc + parsed.path).strip("/")
        try:
            self._instrument: SimInstrument = device(address)
        except ValueError as exc:
            raise SerialException(f"could not open port {self.portstr}: {exc}") from None
        if self._instrument.fault == "unplugged":
            raise SerialException(f"could not open port {self.portstr}: [Errno 2] No such file or directory")
        if self._instrument.is_open and self._exclusive:
            raise SerialException(f"could not exclusively lock port {self.portstr}: [Errno 11] Resource busy")
        self._instrument.is_open = True
        self._pending = bytearray()
        self._out = bytearray()
        self.is_open = True

    def close(self) -> None:
        if self.is_open:
            self._instrument.is_open = False
            self.is_open = False

    def from_url(self, url: str) -> str:
        return url

    def _reconfigure_port(self) -> None:
        """Baud rate and framing are irrelevant in memory."""

    def _check(self) -> SimInstrument:
        if not self.is_open:
            raise PortNotOpenError()
        if self._instrument.fault == "unplugged":
            raise SerialException("read failed: [Errno 5] Input/output error (device disconnected?)")
        return self._instrument

    @property
    def in_waiting(self) -> int:
        self._check()
        return len(self._out)

    def read(self, size: int = 1) -> bytes:
        self._check()
        data = bytes(self._out[:size])
        del self._out[:size]
        return data

    def write(self, data: bytes) -> int:
        instrument = self._check()
        if instrument.fault == "write_timeout":
            raise SerialTimeoutException("Write timeout")
        self._pending += data
        term = instrument.terminator
        while term in self._pending:
            line, _, rest = bytes(self._pending).partition(term)
            self._pending = bytearray(rest)
            instrument.transcript.append(line + term)
            reply = instrument.reply(line.decode(errors="replace"))
            if instrument.fault == "silent":
                continue
            if instrument.fault == "short":
                reply = reply[: len(reply) // 2]
            self._out += reply
        return len(data)

    def flush(self) -> None:
        self._check()

    def reset_input_buffer(self) -> None:
        self._check()
        self._out.clear()

    def reset_output_buffer(self) -> None:
        self._check()
        self._pending.clear()
