"""Each simulated device's realism truth, drawn from its seed and its bench-file options.

Every effect draws from its own stream of the device's seed, so switching one effect on or off does
not change another's values (nor the device's other hidden truth). The truths live in the devices'
hidden truth (``realism`` field) and come out only through :func:`mock_hw.truth.reveal_truth`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mock_hw.realism.aberrations import ZernikeAberration, draw_aberration
from mock_hw.realism.distortion import RadialDistortion, draw_distortion
from mock_hw.realism.drift import Drift, draw_drift, draw_pointing
from mock_hw.realism.flicker import Flicker, draw_flicker
from mock_hw.realism.fringing import SubpixelFringing, draw_fringing
from mock_hw.realism.input_modulator import DMDModulation, LCModulation, draw_dmd, draw_lc
from mock_hw.realism.nonlinearity import SoftSaturation, draw_nonlinearity
from mock_hw.realism.options import CameraRealismOptions, FourierRealismOptions, InputRealismOptions
from mock_hw.realism.slm_surface import SurfaceBow, draw_surface
from mock_hw.realism.stray_light import StrayLight, draw_stray_light
from mock_hw.realism.vignetting import Vignetting, draw_vignetting

# Streams of the device seed, one per effect (mock_hw.truth uses 1–4).
_SURFACE, _FRINGING, _FLICKER, _PHASE_DRIFT = 101, 102, 103, 104
_MODULATOR, _POWER_DRIFT, _POINTING = 111, 112, 113
_ABERRATION, _VIGNETTING, _DISTORTION, _NONLINEARITY, _STRAY = 121, 122, 123, 124, 125


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), stream])


@dataclass(frozen=True)
class FourierRealismTruth:
    surface: SurfaceBow | None
    fringing: SubpixelFringing | None
    flicker: Flicker | None
    phase_drift: Drift | None  # relative change of the retardance (negative: the panel warms)

    @property
    def time_dependent(self) -> bool:
        return self.flicker is not None or self.phase_drift is not None


@dataclass(frozen=True)
class InputRealismTruth:
    modulator: DMDModulation | LCModulation | None  # None: the ideal linear amplitude modulator
    power_drift: Drift | None  # relative change of the laser power
    pointing_drift: tuple[Drift, Drift] | None  # (y, x) of the beam centre, metres


@dataclass(frozen=True)
class CameraRealismTruth:
    aberration: ZernikeAberration | None
    vignetting: Vignetting | None
    distortion: RadialDistortion | None
    nonlinearity: SoftSaturation | None
    stray_light: StrayLight | None


def draw_fourier_realism(seed: int, options: FourierRealismOptions) -> FourierRealismTruth:
    o = options
    drift = None
    if o.phase_drift > 0:
        d = draw_drift(_rng(seed, _PHASE_DRIFT), o.phase_drift, o.phase_drift_time_s, signed=False)
        drift = Drift(-d.amplitude, d.time_constant_s)
    return FourierRealismTruth(
        surface=draw_surface(_rng(seed, _SURFACE), o.surface_bow_m) if o.surface_bow_m > 0 else None,
        fringing=draw_fringing(_rng(seed, _FRINGING), o.fringing_width_m) if o.fringing_width_m > 0 else None,
        flicker=draw_flicker(_rng(seed, _FLICKER), o.flicker_rms_rad, seed) if o.flicker_rms_rad > 0 else None,
        phase_drift=drift,
    )


def draw_input_realism(seed: int, options: InputRealismOptions, bit_depth: int) -> InputRealismTruth:
    o = options
    modulator: DMDModulation | LCModulation | None = None
    if o.modulator == "dmd":
        modulator = draw_dmd(_rng(seed, _MODULATOR), o.pwm_period_s, bit_depth)
    elif o.modulator == "lc":
        modulator = draw_lc(_rng(seed, _MODULATOR), o.lc_phase_coupling)
    return InputRealismTruth(
        modulator=modulator,
        power_drift=draw_drift(_rng(seed, _POWER_DRIFT), o.power_drift, o.power_drift_time_s) if o.power_drift > 0 else None,
        pointing_drift=(
            draw_pointing(_rng(seed, _POINTING), o.pointing_drift_m, o.pointing_drift_time_s) if o.pointing_drift_m > 0 else None
        ),
    )


def draw_camera_realism(seed: int, options: CameraRealismOptions, full_well_e: float, half_diagonal_m: float) -> CameraRealismTruth:
    """``half_diagonal_m``: the sensor's half-diagonal in the output plane (distortion and vignetting scale)."""
    o = options
    return CameraRealismTruth(
        aberration=draw_aberration(_rng(seed, _ABERRATION), o.zernike_noll, o.zernike_rms_rad) if o.zernike_noll else None,
        vignetting=draw_vignetting(_rng(seed, _VIGNETTING), o.vignetting, half_diagonal_m) if o.vignetting > 0 else None,
        distortion=(
            draw_distortion(_rng(seed, _DISTORTION), o.distortion_k1, o.distortion_k2, half_diagonal_m)
            if (o.distortion_k1, o.distortion_k2) != (0.0, 0.0) else None
        ),
        nonlinearity=draw_nonlinearity(_rng(seed, _NONLINEARITY), o.nonlinearity, full_well_e) if o.nonlinearity > 0 else None,
        stray_light=draw_stray_light(_rng(seed, _STRAY), o.stray_light) if o.stray_light > 0 else None,
    )
