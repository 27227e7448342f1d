"""Input-modulator response: gray level → the light each modulator pixel sends on (its effective
amplitude), measured on the camera through the 4f with a flat Fourier SLM (a mirror).

A block at the modulator's centre is shown at a series of gray levels (the rest dark, the beam
blocked by the shutter for the dark frames); the camera's summed signal above dark over the block's
image (:func:`block_pixels`) is proportional to the power the block's pixels send, so ``I(g)/I(L−1)``
is the relative intensity and its square root the effective amplitude. At gray 0 that is the leak
of a dark pixel (finite contrast), recorded as ``leak_amplitude`` with how the table leaves it under
an image (``leak_adds``): every pixel outside an image sends it too. What it shows about the modulator:

- an ideal analog amplitude modulator: amplitude linear in gray (intensity quadratic);
- a DMD (binary mirrors, gray by pulse-width modulation over the exposure): intensity linear in gray,
  so √intensity goes as √gray; the time-average adds the *intensities* of the bit planes, which no
  coherent amplitude reproduces exactly. What a coherent 4f system's output follows is the mirrors'
  field averaged over the exposure (the output is its coherent image plus what the planes' departures
  from it add), and that mean field is linear in the fraction of time on, as the intensity is: the
  table inverts the relative intensity itself (up to the off mirrors' leak), so it stays near linear
  and corrects the leak and contrast only. A √-intensity table (the gray of the wanted mean
  intensity) lost 3.6 points of accuracy against the linear map through the lab bench (one student
  and mask file, digits: 93.0 % against 96.7 %; the mean-field table 96.7 %). An
  exposure that is not a whole number of PWM periods catches a partial period whose error depends on
  when the frame started: averaging ``frames_each`` frames only dilutes it (measured on the lab bench
  at a 0.8 ms exposure, 1.2 periods: up to 0.08 of full-on intensity); a real DMD calibration
  triggers the camera from the DMD so the exposure spans whole periods;
- an LC amplitude modulator: intensity cos²(Γ(g)/2); its phase coupling is not seen by intensity.

Slow drift of the laser power is taken out by a full-on reference shown every few levels (the
sweep's intensities are divided by the references interpolated over the sweep); the references'
spread is reported (``reference_drift_rel``). The record holds the measured amplitude of every
gray level (interpolated between the sampled ones, made monotone), the field the table delivers
(``field``), the lookup table amplitude → gray (``table_gray``), and which simple model fits best
(``model``). A bench session installs that table on the input modulator
(:class:`drivers.amplitude_table.AmplitudeTable`), so every image is then shown through it; the
measurement itself always shows raw gray levels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calibration.acquisition import Acquirer
from calibration.errors import AmbiguousMeasurement
from calibration.exposure import check_frames, peak_over, set_exposure_for_peak
from calibration.raw_log import Progress, RawLog, no_progress
from drivers.amplitude_table import AmplitudeTable


#: the model of binary mirrors (a DMD), whose table inverts the relative intensity rather than its root
BINARY_PWM = "intensity linear in gray (binary mirrors, PWM)"


@dataclass(frozen=True)
class InputResponseSettings:
    levels: int = 33  # gray levels sampled
    frames_each: int = 4  # frames averaged per level (a DMD's partial PWM period differs frame to frame)
    block_fraction: float = 0.4  # side of the lit block over the modulator's side
    reference_every: int = 8  # a full-on reference after every this many levels
    table_samples: int = 256  # amplitude targets of the lookup table over [0, 1]


@dataclass
class InputResponseResult:
    params: dict
    residuals: dict
    arrays: dict


def _block(shape: tuple[int, int], fraction: float, amplitude: float) -> np.ndarray:
    rows, cols = shape
    h, w = max(1, int(rows * fraction)), max(1, int(cols * fraction))
    out = np.zeros(shape)
    out[(rows - h) // 2 : (rows - h) // 2 + h, (cols - w) // 2 : (cols - w) // 2 + w] = amplitude
    return out


#: camera pixels within this many of the block image's edge are left out of the sums: there the block's
#: light and its dark surroundings' interfere, a ratio no single modulator pixel shows
BLOCK_EDGE_PX = 2


def block_pixels(full_on: np.ndarray) -> np.ndarray:
    """Camera pixels (bool mask) inside the image of the lit block: above half the full-on frame's
    robust peak, less :data:`BLOCK_EDGE_PX` at every edge. Summing the whole frame instead would add
    the dark surroundings' leak (every modulator pixel sends some light), which at gray 0 outweighs
    the block's own: on the embedded bench the dark field read 0.055 of full on against a true 0.023."""
    lit = full_on > 0.5 * np.percentile(full_on, 99.9)
    inner = lit.copy()
    for shift in range(1, BLOCK_EDGE_PX + 1):
        inner[shift:] &= lit[:-shift]
        inner[:-shift] &= lit[shift:]
        inner[:, shift:] &= lit[:, :-shift]
        inner[:, :-shift] &= lit[:, shift:]
    if not inner.any():
        raise AmbiguousMeasurement(
            f"the lit block's image has no pixel {BLOCK_EDGE_PX} px inside its edge ({int(lit.sum())} lit); "
            "check the modulator, its illumination and the camera's focus"
        )
    return inner


def measure_input_response(acq: Acquirer, log: RawLog, settings: InputResponseSettings = InputResponseSettings(),
                           progress: Progress = no_progress) -> InputResponseResult:
    """The modulator's raw response: measured through the linear amplitude table (amplitude g/(L−1)
    shows gray g exactly), whatever table is active; the active one is restored afterwards."""
    inp = acq.bench.input_slm
    active = inp.amplitude_table
    inp.amplitude_table = AmplitudeTable.linear(inp.bit_depth)
    try:
        return _measure(acq, log, settings, progress)
    finally:
        inp.amplitude_table = active


def _measure(acq: Acquirer, log: RawLog, settings: InputResponseSettings, progress: Progress) -> InputResponseResult:
    bench = acq.bench
    inp, cam, slm = bench.input_slm, bench.camera, bench.fourier_slm
    levels = inp.levels
    top = levels - 1
    acq.set_mask(np.zeros(slm.grid.shape, np.uint16))
    full = _block(inp.grid.shape, settings.block_fraction, 1.0)
    dark_input = np.zeros(inp.grid.shape)

    def peak() -> tuple[float, float]:
        frames = acq.capture(np.stack([full, dark_input]), what="exposure block").data
        return peak_over(frames[0], frames[1])

    progress("exposure", 0.0)
    set_exposure_for_peak(cam, peak, 0.6)
    dark = acq.dark_frames(4).astype(np.float64).mean(axis=0)
    grays = np.unique(np.linspace(0, top, min(settings.levels, levels)).round().astype(int))
    # the sweep in order, a full-on reference before it and after every `reference_every` levels
    shown, is_ref = [], []
    for k, g in enumerate(grays):
        if k % settings.reference_every == 0:
            shown.append(top), is_ref.append(True)
        shown.append(int(g)), is_ref.append(False)
    shown.append(top), is_ref.append(True)
    amps = np.repeat(np.stack([_block(inp.grid.shape, settings.block_fraction, g / top) for g in shown]),
                     settings.frames_each, axis=0)
    progress(f"{len(grays)} gray levels, {sum(is_ref)} references", 0.1)
    frames = acq.capture(amps, what="input gray levels").data
    check_frames(bench, frames.max(axis=(1, 2)), float(np.median(dark)), 1.0, "the input block's image")
    above = frames.astype(np.float64) - dark
    block = block_pixels(above[np.repeat(np.array(is_ref), settings.frames_each)].mean(axis=0))
    signal = above[:, block].sum(axis=1).reshape(len(shown), settings.frames_each).mean(axis=1)
    position = np.arange(len(shown))
    ref_pos, refs = position[np.array(is_ref)], signal[np.array(is_ref)]
    reference = np.interp(position, ref_pos, refs)
    level_pos = position[~np.array(is_ref)]
    intensity = signal[level_pos] / reference[level_pos]
    log.add("input_gray", grays)
    log.add("input_signal", signal)
    log.add("input_shown", np.asarray(shown))
    log.add("input_exposure_s", cam.exposure_s)
    if intensity[-1] - intensity[0] < 0.2:
        raise AmbiguousMeasurement(
            f"{inp.name}: the light through the input block hardly changes with gray level "
            f"({intensity[0]:.2f} to {intensity[-1]:.2f} of full on); check the modulator and its illumination"
        )
    rel = np.clip(intensity, 0, None)
    # every gray level: interpolated, made monotone (a response that dips is a measurement's noise)
    all_rel = np.maximum.accumulate(np.interp(np.arange(levels), grays, rel))
    amplitude = np.sqrt(all_rel / all_rel[-1])
    # which simple model fits: intensity linear in gray (DMD), amplitude linear in gray (ideal), cos² (LC)
    t = grays / top
    models = {
        BINARY_PWM: np.polyval(np.polyfit(t, rel, 1), t),
        "amplitude linear in gray (analog)": np.polyval(np.polyfit(t, np.sqrt(rel), 1), t) ** 2,
    }
    gammas = np.linspace(0.5 * np.pi, 1.5 * np.pi, 201)
    cos2 = [np.cos(g0 * (1 - t) / 2) ** 2 for g0 in gammas]
    scale = [float(np.dot(c, rel) / max(np.dot(c, c), 1e-12)) for c in cos2]
    best = int(np.argmin([np.sum((s * c - rel) ** 2) for s, c in zip(scale, cos2)]))
    models["cos² of a falling retardance (LC)"] = scale[best] * cos2[best]
    misfit = {name: float(np.sqrt(np.mean((fit - rel) ** 2))) for name, fit in models.items()}
    model = min(misfit, key=misfit.get)  # type: ignore[arg-type]
    # the field the table delivers (see the module docstring): binary mirrors' mean field, else √intensity
    field = all_rel / all_rel[-1] if model == BINARY_PWM else amplitude
    targets = np.linspace(0, 1, settings.table_samples)
    table_gray = np.abs(field[None, :] - targets[:, None]).argmin(axis=1).astype(np.uint16)
    progress("done", 1.0)
    params = {
        # the field of a dark pixel over a full-on one (√ of their intensities, whatever the model): what
        # every pixel outside an image sends (the twin adds it: labctl.optics.twin.FourFTwin.leak_field)
        "leak_amplitude": float(amplitude[0]),
        # how the table leaves it under an image: binary mirrors' table inverts their mean intensity, so
        # the off mirrors' field stays under every level (leak + (1 − leak)·a); a table of the field
        # itself shows the leak only where it cannot go darker (max(a, leak))
        "leak_adds": model == BINARY_PWM,
        "block_pixels": int(block.sum()),
        "levels_sampled": int(len(grays)),
        "block_fraction": settings.block_fraction,
        "frames_each": settings.frames_each,
        "model": model,
        "contrast": float(all_rel[-1] / max(all_rel[0], 1e-12)),
        "table_samples": settings.table_samples,
        "table": "amplitude targets linspace(0, 1, table_samples) -> gray level (nearest measured field: the relative "
                 "intensity for binary mirrors, their mean field; its square root otherwise)",
    }
    residuals = {
        "model_rms_rel": misfit,
        "reference_drift_rel": float(np.ptp(refs) / np.mean(refs)),
        "monotone_correction_rel": float(np.max(np.abs(np.interp(grays, np.arange(levels), all_rel) - rel))),
    }
    arrays = {"gray": grays, "relative_intensity": rel, "amplitude": amplitude, "field": field, "table_gray": table_gray}
    return InputResponseResult(params, residuals, arrays)
