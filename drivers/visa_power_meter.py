"""Optical power meter speaking SCPI over VISA (USB-TMC, GPIB, serial), e.g. Thorlabs PM100.

Every write is followed by ``SYST:ERR?`` so a refused setting surfaces at the call that caused it;
every read has a finite timeout. ``sim = true`` opens the pyvisa-sim description shipped beside this
module (``visa_power_meter.yaml``), which CI uses in place of the instrument.
"""

from __future__ import annotations

import math
from importlib import resources
from typing import Any

from drivers.capabilities import FirmwareIdentity
from drivers.device import DeviceInfo
from drivers.errors import DeviceBusy, DeviceDisconnected, DeviceError, DeviceNotFound, DeviceTimeout, InvalidSetting
from drivers.instruments import PowerMeter

SIM_YAML = "visa_power_meter.yaml"


class VisaPowerMeter(PowerMeter, FirmwareIdentity):
    """SCPI power meter at VISA ``resource`` (e.g. ``USB0::0x1313::0x8072::P2001234::INSTR``)."""

    def __init__(self, name: str, resource: str, wavelength_m: float | None = None, timeout_s: float = 2.0,
                 sim: bool = False) -> None:
        super().__init__(name)
        if not (timeout_s > 0 and math.isfinite(timeout_s)):
            raise ValueError(f"timeout_s must be finite and positive; got {timeout_s!r}")
        self._resource_name = resource
        self._initial_wavelength_m = wavelength_m
        self._timeout_s = timeout_s
        self._sim = sim
        self._rm: Any = None
        self._inst: Any = None
        self._identity: list[str] = []

    @property
    def address(self) -> str:
        return f"VISA {self._resource_name}" + (" (pyvisa-sim)" if self._sim else "")

    @property
    def info(self) -> DeviceInfo:
        parts = self._identity + [""] * 4
        return DeviceInfo(driver="visa_power_meter", vendor=parts[0], model=parts[1], serial=parts[2])

    @property
    def firmware(self) -> str:
        return self._identity[3] if len(self._identity) > 3 else ""

    # -- link ----------------------------------------------------------------------------------------
    def _visa_error(self, exc: Exception, action: str) -> DeviceError:
        import pyvisa

        if isinstance(exc, pyvisa.errors.VisaIOError):
            code = exc.error_code
            if code == pyvisa.constants.StatusCode.error_timeout:
                return DeviceTimeout(self.name, f"{action} on {self.address}: no reply within {self._timeout_s:g} s; "
                                     "check that the meter is on and not in local mode")
            if code in (pyvisa.constants.StatusCode.error_resource_locked,):
                return DeviceBusy(self.name, f"{action} on {self.address}: the instrument is locked by another "
                                  "program; close it")
            if code in (pyvisa.constants.StatusCode.error_resource_not_found,):
                return DeviceNotFound(self.name, f"{action}: {self.address} not found; check the cable and the "
                                      "resource name (pyvisa-info, or ResourceManager().list_resources())")
            return DeviceDisconnected(self.name, f"{action} on {self.address} failed ({exc}); check the cable, "
                                      "then close() and open() the meter")
        return DeviceError(self.name, f"{action} on {self.address} failed: {type(exc).__name__}: {exc}")

    def _query(self, command: str) -> str:
        try:
            return str(self._inst.query(command)).strip()
        except Exception as exc:  # noqa: BLE001 - mapped and chained
            raise self._visa_error(exc, f"query {command!r}") from exc

    def _write(self, command: str) -> None:
        """Write, then read the error queue; a non-zero entry raises with the instrument's text."""
        try:
            self._inst.write(command)
        except Exception as exc:  # noqa: BLE001 - mapped and chained
            raise self._visa_error(exc, f"write {command!r}") from exc
        self.check_errors(after=command)

    def check_errors(self, after: str = "") -> None:
        reply = self._query("SYST:ERR?")
        code, _, text = reply.partition(",")
        try:
            number = int(code)
        except ValueError:
            raise DeviceError(self.name, f"{self.address} answered {reply!r} to SYST:ERR?; is this a SCPI power "
                              "meter?") from None
        if number != 0:
            for _ in range(32):  # drain the rest of the queue (bounded: a broken meter may never say 0)
                if self._query("SYST:ERR?").partition(",")[0].strip() in ("0", "+0"):
                    break
            raise InvalidSetting(self.name, f"{self.address} reported error {number} {text.strip()} after "
                                 f"{after!r}; check the value against the meter's range")

    def _connect(self) -> None:
        import pyvisa

        try:
            if self._sim:
                yaml = resources.files("drivers").joinpath(SIM_YAML)
                self._rm = pyvisa.ResourceManager(f"{yaml}@sim")
            else:
                self._rm = pyvisa.ResourceManager()
            self._inst = self._rm.open_resource(self._resource_name, timeout=int(self._timeout_s * 1000),
                                                read_termination="\n", write_termination="\n")
        except Exception as exc:  # noqa: BLE001 - mapped and chained
            self._release()
            if isinstance(exc, pyvisa.errors.VisaIOError):
                raise self._visa_error(exc, "opening") from exc
            raise DeviceNotFound(self.name, f"cannot open {self.address} ({exc}); check the resource name and the "
                                 "VISA library (pyvisa-info)") from exc
        try:
            identity = self._query("*IDN?")
            if not identity:
                raise DeviceNotFound(self.name, f"nothing answered *IDN? at {self.address}; check the resource name "
                                     "and that the meter is on")
            self._identity = [p.strip() for p in identity.split(",")]
            self._write("*CLS")
            self._write("SENS:POW:UNIT W")
            if self._initial_wavelength_m is not None:
                self.wavelength_m = self._initial_wavelength_m
        except BaseException:
            self._release()
            raise

    def _release(self) -> None:
        inst, self._inst = self._inst, None
        rm, self._rm = self._rm, None
        for handle in (inst, rm):
            if handle is not None:
                try:
                    handle.close()
                except Exception:  # noqa: BLE001 - releasing on an error path; the first error is what matters
                    pass

    def _disconnect(self) -> None:
        self._release()

    # -- measurement ---------------------------------------------------------------------------------------
    @property
    def wavelength_m(self) -> float:
        self._require_open()
        reply = self._query("SENS:CORR:WAV?")
        try:
            return float(reply) * 1e-9
        except ValueError:
            raise DeviceError(self.name, f"{self.address} answered {reply!r} to SENS:CORR:WAV?") from None

    @wavelength_m.setter
    def wavelength_m(self, value: float) -> None:
        if self._inst is None:
            self._require_open()
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise InvalidSetting(self.name, f"wavelength {value!r} m is not a positive number")
        self._write(f"SENS:CORR:WAV {value * 1e9:.1f}")

    def read_power_w(self, timeout_s: float = 2.0) -> float:
        self._require_open()
        if not (timeout_s > 0 and math.isfinite(timeout_s)):
            raise InvalidSetting(self.name, f"timeout must be finite and positive; got {timeout_s!r}")
        self._inst.timeout = int(timeout_s * 1000)
        try:
            reply = self._query("MEAS:POW?")
        finally:
            self._inst.timeout = int(self._timeout_s * 1000)
        try:
            power = float(reply)
        except ValueError:
            raise DeviceError(self.name, f"{self.address} answered {reply!r} to MEAS:POW?") from None
        if not math.isfinite(power):
            raise DeviceError(self.name, f"{self.address} reported power {reply!r} (over range?); attenuate the beam")
        return power
