"""Any slmsuite SLM (vendor drivers, the screen-mirrored display SLM, the simulated SLM) behind our
:class:`~drivers.slm.SLM` interface.

Phase convention. Our gray levels are the device's raw levels: ``write_gray`` hands integer data to
slmsuite's ``set_phase`` unchanged. slmsuite 0.5 maps phase to gray levels *decreasingly* (most
SLMs lower the phase delay as the voltage rises): phase 0 lands on the top level, and a measured
``gamma`` table gives the realized phase per level in units of 2π (with that same sign). Our
default :class:`~drivers.phase_table.PhaseTable` for this adapter is therefore built from the
realized phase of every level (:func:`convention_table`), not the increasing linear table, so
``write_phase`` shows what slmsuite's own ``set_phase`` would.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from drivers.bench import BenchContext
from drivers.capabilities import PatternReadback
from drivers.device import DeviceInfo
from drivers.errors import DeviceDisconnected
from drivers.phase_table import TWO_PI, PhaseTable
from drivers.slm import SLM, PixelGrid, SLMRole
from drivers.slmsuite_common import SLM_MODELS, address, check_model, load_class, vendor_errors

#: key in the BenchContext under which adapters publish their slmsuite objects (by role)
SHARED_KEY = "slmsuite_objects"


def realized_phase(bit_depth: int, gamma: np.ndarray | None, phase_scaling: float = 1.0, gamma_sign: int = -1) -> np.ndarray:
    """Phase in [0, 2π) that slmsuite 0.5 says each gray level realizes.

    With a measured ``gamma`` (2π units per level) it is ``gamma_sign·2π·gamma``; without one, the
    ideal response of ``SLM._phase2gray`` (which shifts by one level so that phase 0 is the top
    level when ``phase_scaling`` is 1).
    """
    levels = 2**bit_depth
    gray = np.arange(levels, dtype=np.float64)
    if gamma is not None:
        phase = gamma_sign * TWO_PI * np.asarray(gamma, dtype=np.float64)
    elif phase_scaling == 1:
        phase = (gray + 1) * gamma_sign * TWO_PI / levels
    else:
        phase = (gray - (levels - 1)) * (-TWO_PI / (levels * phase_scaling))
    return np.mod(phase, TWO_PI)


def convention_table(bit_depth: int, gamma: np.ndarray | None, phase_scaling: float = 1.0, gamma_sign: int = -1,
                     samples: int = 1024) -> PhaseTable:
    """PhaseTable whose entry k is the level realizing the phase closest (circularly) to 2πk/K."""
    rho = realized_phase(bit_depth, gamma, phase_scaling, gamma_sign)
    target = np.arange(samples) * TWO_PI / samples
    diff = np.angle(np.exp(1j * (target[:, None] - rho[None, :])))
    gray = np.argmin(np.abs(diff), axis=1).astype(np.uint16)
    return PhaseTable(gray=gray, bit_depth=bit_depth, record_id="slmsuite-convention")


class SlmsuiteSLM(SLM, PatternReadback):
    """Wraps the slmsuite SLM class named by ``model`` (see ``drivers.slmsuite_common.SLM_MODELS``).

    ``settings`` are passed to that class's constructor (e.g. ``resolution = [cols, rows]`` and
    ``pitch_um`` for ``simulated``; ``slm_number`` for ``meadowlark``). ``wavelength_m`` overrides
    the wavelength the device reports (slmsuite's ``wav_um``) when given.
    """

    def __init__(self, name: str, role: SLMRole | str, model: str = "simulated", settings: dict[str, Any] | None = None,
                 serial: str = "", context: BenchContext | None = None) -> None:
        super().__init__(name, role)
        self._model = model
        self._entry = check_model(SLM_MODELS, model, "SLM")
        self._settings = dict(settings or {})
        self._serial = serial
        self._context = context
        self._slm: Any = None
        self._model_name = model  # the slmsuite class's name once opened

    @property
    def address(self) -> str:
        return address(self._model, self._settings)

    @property
    def slmsuite_slm(self) -> Any:
        """The wrapped slmsuite object (open devices only), e.g. for slmsuite's own calibrations."""
        self._require_open()
        return self._slm

    def _need(self) -> Any:
        if self._slm is None:
            raise DeviceDisconnected(self.name, f"{self.address} is not open; call open() first")
        return self._slm

    @property
    def info(self) -> DeviceInfo:
        vendor = self._entry.vendor
        return DeviceInfo(driver="slmsuite", vendor=vendor, model=self._model_name, serial=self._serial or self.address)

    @property
    def grid(self) -> PixelGrid:
        def read() -> PixelGrid:
            rows, cols = self._slm.shape
            return PixelGrid(int(rows), int(cols), float(np.ravel(self._slm.pitch_um)[0]) * 1e-6)

        return self._described("grid", read)

    @property
    def bit_depth(self) -> int:
        return self._described("bit depth", lambda: int(self._slm.bitdepth))

    @property
    def wavelength_m(self) -> float:
        return float(self._need().wav_um) * 1e-6

    @property
    def settle_time_s(self) -> float:
        return float(self._need().settle_time_s)

    @property
    def shown_gray(self) -> np.ndarray:
        """The gray levels slmsuite last sent to the device (its ``display`` buffer), as a copy."""
        return np.array(self._need().display, dtype=np.uint16)

    def use_slmsuite_gamma(self) -> None:
        """Replace the phase table by the one implied by the slmsuite object's ``gamma`` (or its ideal response)."""
        slm = self._need()
        self._phase_table = convention_table(
            self.bit_depth, None if slm.gamma is None else np.asarray(slm.gamma), float(slm.phase_scaling), int(slm._gamma_sign)
        )

    def _connect(self) -> None:
        cls = load_class(self.name, self._model, self._entry)
        with vendor_errors(self.name, self.address, "opening the SLM"):
            self._slm = cls(**self._settings)
        self._model_name = type(self._slm).__name__
        try:
            if self._phase_table is None:
                self.use_slmsuite_gamma()
            if self._context is not None:
                self._context.shared(SHARED_KEY, dict)[f"{self.role}_slm"] = self._slm
        except BaseException:
            self._disconnect()
            raise

    def _disconnect(self) -> None:
        slm, self._slm = self._slm, None
        if self._context is not None:
            self._context.shared(SHARED_KEY, dict).pop(f"{self.role}_slm", None)
        if slm is not None:
            with vendor_errors(self.name, self.address, "closing the SLM"):
                slm.close()

    def _show_gray(self, levels: np.ndarray) -> None:
        slm = self._need()
        pattern = levels[-1] if levels.ndim == 3 else levels
        with vendor_errors(self.name, self.address, "writing a pattern"):
            slm.set_phase(pattern.astype(slm.dtype), settle=False)
