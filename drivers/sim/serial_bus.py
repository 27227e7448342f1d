"""The simulated serial instruments and the "bus" they hang on.

The bus is the simulated world of one Python process: which instruments are plugged in, their
state (which persists across port re-opens, as on real hardware), which ports are open (for
exclusive access) and which faults are armed. Tests reach it through :func:`device`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class SimInstrument:
    """Base of a simulated instrument: turns complete command lines into reply bytes."""

    terminator: bytes = b"\r"

    def __init__(self) -> None:
        self.transcript: list[bytes] = []  # every complete command received, terminator included
        self.fault: str | None = None  # None, "silent", "short", "unplugged", "write_timeout"
        self.is_open = False

    def reply(self, command: str) -> bytes:
        raise NotImplementedError


class SC10Shutter(SimInstrument):
    """Thorlabs SC10-style shutter controller: echoes each command, replies, then prompts ``> ``."""

    terminator = b"\r"

    def __init__(self) -> None:
        super().__init__()
        self.enabled = False

    def reply(self, command: str) -> bytes:
        if command == "id?":
            body = "THORLABS SC10 VERSION 1.07\r"
        elif command == "ens?":
            body = f"{int(self.enabled)}\r"
        elif command == "ens":
            self.enabled = not self.enabled
            body = ""
        else:
            body = "CMD_NOT_DEFINED\r"
        return f"{command}\r{body}> ".encode()


class ObisLaser(SimInstrument):
    """Coherent OBIS-style laser: SCPI-like commands; each reply line is followed by ``OK`` or ``ERR-nnn``."""

    terminator = b"\r\n"
    max_power_w = 0.05

    def __init__(self) -> None:
        super().__init__()
        self.emission = False
        self.power_w = 0.0

    def reply(self, command: str) -> bytes:
        head, _, arg = command.partition(" ")
        head = head.upper()
        if head == "*IDN?":
            return b"Coherent, Inc - OBIS 532nm LS 50mW - V1.3.10 - Jan 14 2016\r\nOK\r\n"
        if head == "SYST:INF:SNUM?":
            return b"170311\r\nOK\r\n"
        if head == "SOUR:AM:STAT?":
            return (b"ON" if self.emission else b"OFF") + b"\r\nOK\r\n"
        if head == "SOUR:AM:STAT" and arg in ("ON", "OFF"):
            self.emission = arg == "ON"
            return b"OK\r\n"
        if head == "SOUR:POW:LEV:IMM:AMPL?":
            return f"{self.power_w:.5f}\r\nOK\r\n".encode()
        if head == "SOUR:POW:LIM:HIGH?":
            return f"{self.max_power_w:.5f}\r\nOK\r\n".encode()
        if head == "SOUR:POW:LEV:IMM:AMPL":
            try:
                value = float(arg)
            except ValueError:
                return b"ERR-102\r\n"
            if not 0 <= value <= self.max_power_w:
                return b"ERR-102\r\n"
            self.power_w = value
            return b"OK\r\n"
        return b"ERR-100\r\n"


MODELS: dict[str, type[SimInstrument]] = {"sc10": SC10Shutter, "obis": ObisLaser}


@dataclass
class _Bus:
    devices: dict[str, SimInstrument] = field(default_factory=dict)


_BUS = _Bus()


def device(address: str) -> SimInstrument:
    """The simulated instrument at ``address`` (``"sc10"``, ``"obis/2"`` ...), plugged in on first use."""
    if address not in _BUS.devices:
        model = address.split("/", 1)[0]
        if model not in MODELS:
            raise ValueError(f"no simulated instrument model {model!r}; known: {sorted(MODELS)}")
        _BUS.devices[address] = MODELS[model]()
    return _BUS.devices[address]


def unplug_all() -> None:
    """Forget every simulated instrument (tests start from a clean bench)."""
    _BUS.devices.clear()
