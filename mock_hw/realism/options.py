"""The ``realism`` sub-tables of a bench file: which lab non-idealities a simulated device has, and
how strong.

    [input_slm.realism]          # the input modulator and the laser that lights it
    modulator = "dmd"            # "ideal" (linear amplitude), "dmd" (binary, PWM gray) or "lc" (cos²)
    pwm_period_s = 6.9e-4        # dmd: one PWM cycle of all bit planes
    power_drift = 0.03           # laser power drift (fraction, at the drift's plateau)
    pointing_drift_m = 1e-4      # beam pointing drift on the modulator

    [fourier_slm.realism]
    surface_bow_m = 3e-8         # panel flatness: sag of the bow at the panel's corner
    fringing_width_m = 2.5e-6    # fringing field spread of the LC layer (sub-pixel model)
    flicker_rms_rad = 0.05       # per-frame phase flicker at a 2π level
    phase_drift = 0.01           # retardance drift (fraction, at the plateau)

    [camera.realism]             # the imaging path: lenses, relay, sensor
    zernike_noll = [5, 6, 7, 8, 11]
    zernike_rms_rad = 0.4
    vignetting = 0.15
    distortion_k1 = -0.02
    nonlinearity = 0.03
    stray_light = 0.002

Every number is a magnitude: the value the device has is drawn from its seed around it (each
effect's module says how), so benches of several seeds differ as real ones do. A key left out is off
(0); a drift's ``*_time_s`` is its time constant. Anything else is refused with an
:class:`~drivers.limits.OutOfRange` naming the table and the key (the bench-file factory reports it
as a :class:`~drivers.errors.BenchFileError`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from numbers import Integral
from typing import Any

from drivers.limits import OutOfRange, finite

#: The longest exposure of the simulated camera: a drift whose time constant is shorter would
#: saturate within one frame, which is no drift but a step.
MIN_DRIFT_TIME_S = 1.0
MAX_DRIFT_TIME_S = 1e7
DEFAULT_DRIFT_TIME_S = 600.0
MODULATOR_KINDS = ("ideal", "dmd", "lc")
#: Noll indices 1–4 are piston, tilts and defocus (the twin's own terms); 66 is the last of order 10
ZERNIKE_NOLL_RANGE = (5, 66)
TWO_PI = 6.283185307179586


def _meta(lo: float, hi: float, unit: str = "") -> dict[str, Any]:
    return {"range": (lo, hi), "unit": unit}


@dataclass(frozen=True)
class InputRealismOptions:
    modulator: str = "ideal"
    pwm_period_s: float = field(default=1 / 1440, metadata=_meta(1e-6, 1.0, " s"))
    lc_phase_coupling: float = field(default=0.0, metadata=_meta(0.0, 1.0))
    power_drift: float = field(default=0.0, metadata=_meta(0.0, 0.9))
    power_drift_time_s: float = field(default=DEFAULT_DRIFT_TIME_S, metadata=_meta(MIN_DRIFT_TIME_S, MAX_DRIFT_TIME_S, " s"))
    pointing_drift_m: float = field(default=0.0, metadata=_meta(0.0, 1e-2, " m"))
    pointing_drift_time_s: float = field(default=DEFAULT_DRIFT_TIME_S, metadata=_meta(MIN_DRIFT_TIME_S, MAX_DRIFT_TIME_S, " s"))


@dataclass(frozen=True)
class FourierRealismOptions:
    surface_bow_m: float = field(default=0.0, metadata=_meta(0.0, 5e-6, " m"))
    fringing_width_m: float = field(default=0.0, metadata=_meta(0.0, 2e-5, " m"))
    flicker_rms_rad: float = field(default=0.0, metadata=_meta(0.0, TWO_PI, " rad"))
    phase_drift: float = field(default=0.0, metadata=_meta(0.0, 0.5))
    phase_drift_time_s: float = field(default=DEFAULT_DRIFT_TIME_S, metadata=_meta(MIN_DRIFT_TIME_S, MAX_DRIFT_TIME_S, " s"))


@dataclass(frozen=True)
class CameraRealismOptions:
    zernike_noll: tuple[int, ...] = ()
    zernike_rms_rad: float = field(default=0.0, metadata=_meta(0.0, TWO_PI, " rad"))
    vignetting: float = field(default=0.0, metadata=_meta(0.0, 0.9))
    distortion_k1: float = field(default=0.0, metadata=_meta(-0.1, 0.1))
    distortion_k2: float = field(default=0.0, metadata=_meta(-0.05, 0.05))
    nonlinearity: float = field(default=0.0, metadata=_meta(0.0, 0.2))
    stray_light: float = field(default=0.0, metadata=_meta(0.0, 0.2))


def _fail(table: str, key: str, message: str) -> OutOfRange:
    return OutOfRange(f"[{table}.realism] {key} {message}")


def _parse(cls: type, table: str, raw: Mapping[str, Any] | None) -> Any:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise OutOfRange(f"[{table}.realism] must be a table of options; got {raw!r}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise _fail(table, ", ".join(unknown), f"is not a realism option of [{table}]; known: {sorted(known)}")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        meta = known[key].metadata
        if "range" in meta:
            lo, hi = meta["range"]
            if key.endswith("_time_s") and isinstance(value, (int, float)) and not isinstance(value, bool) and value < lo:
                raise _fail(
                    table, key, f"= {value!r} would saturate within a frame: a drift's time constant must be at least "
                    f"the longest exposure, {MIN_DRIFT_TIME_S:g} s"
                )
            values[key] = finite(f"[{table}.realism] {key}", value, lo, hi, meta["unit"])
        else:
            values[key] = value
    return cls(**values)


def input_options(table: str, raw: Mapping[str, Any] | None) -> InputRealismOptions | None:
    """The ``[table.realism]`` options of an input modulator (``None`` when the table is absent)."""
    options = _parse(InputRealismOptions, table, raw)
    if options is None:
        return None
    if options.modulator not in MODULATOR_KINDS:
        raise _fail(table, "modulator", f"= {options.modulator!r} is not an input-modulator kind; known: {list(MODULATOR_KINDS)}")
    if "pwm_period_s" in raw and options.modulator != "dmd":  # type: ignore[operator]
        raise _fail(table, "pwm_period_s", f"applies to modulator = \"dmd\" only (this one is {options.modulator!r})")
    if "lc_phase_coupling" in raw and options.modulator != "lc":  # type: ignore[operator]
        raise _fail(table, "lc_phase_coupling", f"applies to modulator = \"lc\" only (this one is {options.modulator!r})")
    return options


def fourier_options(table: str, raw: Mapping[str, Any] | None) -> FourierRealismOptions | None:
    """The ``[table.realism]`` options of a Fourier-plane phase SLM."""
    return _parse(FourierRealismOptions, table, raw)


def camera_options(table: str, raw: Mapping[str, Any] | None) -> CameraRealismOptions | None:
    """The ``[table.realism]`` options of the camera and the imaging path in front of it."""
    if raw is None:
        return None
    raw = dict(raw) if isinstance(raw, Mapping) else raw
    noll = raw.pop("zernike_noll", []) if isinstance(raw, dict) else []
    options = _parse(CameraRealismOptions, table, raw)
    if not isinstance(noll, (list, tuple)):
        raise _fail(table, "zernike_noll", f"= {noll!r} is not a list of Noll indices")
    lo, hi = ZERNIKE_NOLL_RANGE
    for i, j in enumerate(noll):
        if isinstance(j, bool) or not isinstance(j, Integral) or j < 1:
            raise _fail(table, f"zernike_noll[{i}]", f"= {j!r} is not a Zernike (Noll) index: a positive integer")
        if j < lo:
            raise _fail(
                table, f"zernike_noll[{i}]", f"= {j} is piston, tilt or defocus (Noll 1–4; the camera's defocus_m sets "
                f"defocus): aberration terms start at Noll {lo}"
            )
        if j > hi:
            raise _fail(table, f"zernike_noll[{i}]", f"= {j} is beyond radial order 10 (Noll {hi})")
    if len(set(noll)) != len(noll):
        raise _fail(table, "zernike_noll", f"= {list(noll)} names a term twice")
    if noll and options.zernike_rms_rad == 0:
        raise _fail(table, "zernike_rms_rad", "is needed with zernike_noll (the RMS wavefront error they share)")
    return CameraRealismOptions(**{**{f.name: getattr(options, f.name) for f in fields(options)}, "zernike_noll": tuple(int(j) for j in noll)})
