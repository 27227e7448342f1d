"""The drift monitor: reference inputs shown again every few batches of a long run, their readouts
compared with those at the start, and the readout scale corrected when the response has moved.

A bench drifts while it runs (the laser's power and pointing, the LC's retardance as the panel
warms): the per-channel gain and offset fitted before the run (:func:`fit_channel_scale`) are then
wrong for the later inputs. A few training inputs (never evaluated ones) are captured three times at
the start, an input further apart each time (:data:`START_SPACERS`): their mean readout is the
*baseline*; a few shutter-dark frames give each channel's dark
level (the readout of no light: the camera's offset on raw frames, ~0 on corrected ones). Every
``every_batches`` batches they are captured again, through the same channel groups and readout as
the run's inputs, and compared with the baseline (:func:`labctl.runner.drift_fit.fit_response`):

- each channel's *gain* is the ratio of its light above the dark level, summed over the reference
  pixels, to the baseline's; the *common-mode gain* is the mean over channels (what a change of
  laser power moves). Each has a standard error, from the references themselves: a jackknife over
  the K references (leave one out, K − 1 over K of the spread), so it holds whatever varies from
  frame to frame (a DMD's PWM gray under a short exposure, the SLM's flicker, shot and read noise),
  and it is pooled over the start captures and every check so far. A gain that moved from the
  correction in force by more than ``gain_tolerance`` and by more than :data:`GAIN_SIGMAS` standard
  errors of a change (common mode; each channel: the same false-alarm rate per check over its C
  channels) is a drift a readout scale can undo: the scale is re-fitted, an event says by how much
  and from which input, and later inputs are read under the new correction; the next check
  re-fits it once more whatever it finds (a step within a check's frames, a drift that goes on). (The light ratio, not
  a fitted slope: on the lab bench a slope with a free offset follows the DMD's frame-to-frame
  contrast and scatters 3× more between checks.)
- a least-squares fit of ``gain · baseline + offset`` per channel over every reference pixel (the
  slope corrected for the baseline's own noise) says whether *any* gain and offset map the baseline
  onto the check: what it leaves beyond the capture noise (``excess``), if above ``residual_limit``
  of the channel's RMS readout, may mean the response changed shape, not just size (the beam or the
  pattern moved, the phase response drifted). The expected noise is the pixel noise of the start
  captures; a pattern common to a whole frame that moves from capture to capture (a DMD's PWM phase
  under a ~1 ms exposure, beating with the frame timing) is in it only as far as the start captures
  sampled it (their staggered spacing makes sure they do not all fall on one phase of the beat),
  and alone can leave 3 % on a small noisy bench. So such a check is only
  *suspect*: the references are captured again at once, and only a channel that both captures
  leave beyond the limit *confirms* a change of shape (measured: the immediate re-capture's excess
  is uncorrelated with the first's on that bench, -0.19; a change of the response is in both). A
  cleared suspect is logged (event ``drift_suspect``) and the run goes on; a confirmed one means no
  gain can undo the change, so the run stops before the next input, with an event that says to
  re-calibrate registration/phase. Stopping rather than
  continuing, because every later result would be silently wrong; a stopped run is resumable, and a
  resume first checks the references against the recorded baseline, so it continues only on a
  bench that is back in order (after a re-calibration the resume is refused, as any change of
  calibration is: start a new run; ``--drift-every 0`` resumes without checks, for an operator who
  accepts it).

The record keeps the baseline (array ``drift_baseline``), the settings, dark level, capture noise
and the start captures' standard errors and count (attribute ``drift``, ``format`` 2; ``captures``
absent: a pair), every check (table
``drift_checks``, :mod:`labctl.records.drift_history`) and, per input, the correction epoch it was
read under (column ``drift_epoch``; 0 is the run's own scale, epoch k the correction of the check
that started it). A resume reuses the baseline and the pooled errors; its first batch is preceded
by a check, because the bench may have changed while the run was stopped. A record of the first
monitor (format 1: one capture pair's gain spread as its threshold, no dark level) is refused for
a resume with checks (``--drift-every 0`` resumes it without).
"""

from __future__ import annotations

import hashlib
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch

from drivers.camera import FrameBatch
from labctl.records.drift_history import (CHECKS_TABLE, DRIFT_EVENT, EPOCH_COLUMN_NAME, SETTINGS_ATTR,
                                          SUSPECT_EVENT, UNCORRECTABLE_EVENT)
from labctl.records.run_record import Column, RunRecord, RunRecordError
from labctl.runner.drift_fit import GAIN_SIGMAS, Baseline, ResponseFit, channel_sigmas, corrected_scale, fit_response
from labctl.runner.drift_settings import DriftSettings
from labctl.runner.optical_inference import OpticalInference

#: the per-input column: the correction epoch each input was read under
EPOCH_COLUMN = Column(EPOCH_COLUMN_NAME, (), "i4")
BASELINE_ARRAY = "drift_baseline"
#: shutter-dark frames averaged for the dark level at the start
DARK_FRAMES = 4
#: how a confirmed change of shape's reason begins (the run's stop reason after ``drift: ``)
SHAPE_CHANGED = "the response changed shape"
#: the layout of attribute ``drift`` this module writes (1, or none: the first monitor's)
FORMAT = 2
#: the start captures of the references, each after this many other inputs shown (each one frame per
#: channel group): a DMD's PWM gray beats with the frame timing, and captures that start K inputs
#: apart can all fall on one phase of the beat (then the capture noise misses it and a steady bench
#: reads as a change of shape); starts K + 1 and K + 2 inputs apart cannot both be multiples of one
#: beat period (with G channel groups, (K + 1)·G and (K + 2)·G frames: a beat whose period divides G
#: is not staggered). Measured on the
#: tests' small noisy bench with a student whose start pair fell on one phase: capture noise 5.7–6.9
#: DN from the pair (a steady run stopped at its first check, 5.15 % and 6.11 % beyond it), 14–17
#: DN from these three (no excess at any of 30 checks); benchmarks/drift.md
START_SPACERS = (0, 1, 2)
#: references reading less than this share of their baseline light: the signal is too weak to be
#: rescaled (the exposure and the readout scale should be measured again)
MIN_CORRECTABLE_GAIN = 0.25


class DriftMonitorWarning(UserWarning):
    """A resume asked for drift checks on a record that has no baseline for them."""


def moved_beyond(change: np.ndarray, common_change: float, channel_tolerance: np.ndarray, common_tolerance: float) -> bool:
    """Whether a gain change exceeds its tolerance, in common mode or on any channel."""
    return bool(abs(common_change) > common_tolerance or np.any(np.abs(change) > channel_tolerance))


@dataclass(frozen=True)
class DriftCheck:
    """One check: what was measured, and what the monitor made of it."""

    number: int  # checks in the run so far, this one included
    first_index: int  # the data-set index of the next input (-1: after the last)
    inputs_done: int  # inputs recorded before it
    wall_time_s: float  # Unix time
    camera_time_s: float  # the reference frames' mean camera timestamp
    fit: ResponseFit  # against the baseline
    change: np.ndarray  # (C,) gain relative to the correction in force before it, minus 1
    common_change: float  # the same for the common-mode gain
    epoch: int  # the correction epoch in force after it
    corrected: bool
    uncorrectable: str  # why no gain can undo the change ("": it can)
    common_tolerance: float  # the common-mode change that counted
    channel_tolerance: np.ndarray  # (C,) the change of each channel that counted
    follow_up: bool = False  # corrected below the tolerances: the first check after a correction
    recheck_excess: np.ndarray | None = None  # (C,) the immediate re-capture's excess (None: not suspect, none made)

    @property
    def suspect(self) -> bool:
        """Whether the first capture left more than the limit beyond the noise (the references were captured again)."""
        return self.recheck_excess is not None

    @property
    def moved(self) -> bool:
        """Whether the gain moved beyond the noise and the tolerance, in common or on any channel."""
        return moved_beyond(self.change, self.common_change, self.channel_tolerance, self.common_tolerance)

    def row(self) -> dict[str, Any]:
        return {
            "number": self.number, "first_index": self.first_index, "inputs_done": self.inputs_done,
            "wall_time_s": self.wall_time_s, "camera_time_s": self.camera_time_s, "gain": self.fit.gain,
            "offset_dn": self.fit.offset_dn, "residual": self.fit.residual, "excess": self.fit.excess, "epoch": self.epoch,
            "corrected": self.corrected, "uncorrectable": bool(self.uncorrectable), "slope": self.fit.slope,
            "gain_se": self.fit.gain_se, "common_gain": self.fit.common_gain, "common_se": self.fit.common_se,
            "common_tolerance": self.common_tolerance, "channel_tolerance": self.channel_tolerance,
            "follow_up": self.follow_up, "suspect": self.suspect,
            "recheck_excess": np.zeros_like(self.fit.excess) if self.recheck_excess is None else self.recheck_excess,
        }

    def events(self) -> list[tuple[str, str]]:
        """(kind, message) of every event of this check: a cleared suspect's, then :meth:`event`'s."""
        out = []
        if self.recheck_excess is not None and not self.uncorrectable.startswith(SHAPE_CHANGED):
            where = f"before input {self.first_index}" if self.first_index >= 0 else "after the last input"
            worst = int(np.argmax(self.fit.excess))
            out.append((SUSPECT_EVENT, (
                f"check {self.number} ({where}): the gain fit left {100 * self.fit.excess[worst]:.2f} % of channel {worst}'s "
                f"readout beyond the capture noise; an immediate re-capture of the references left "
                f"{100 * self.recheck_excess[worst]:.2f} % (at most {100 * self.recheck_excess.max():.2f} % on any channel), "
                "and no channel stayed beyond the limit in both: a frame-to-frame pattern (a DMD's PWM, flicker), "
                "not a change of shape; the run goes on")))
        event = self.event()
        return out if event is None else [*out, event]

    def event(self) -> tuple[str, str] | None:
        """(kind, message) for the record's events; None when nothing moved beyond the tolerances."""
        where = f"before input {self.first_index}" if self.first_index >= 0 else "after the last input"
        beyond = np.abs(self.change) / self.channel_tolerance
        worst = int(np.argmax(beyond))
        moved = (f"check {self.number} ({where}, {self.inputs_done} inputs done): common-mode gain moved by "
                 f"{100 * self.common_change:+.2f} % (threshold {100 * self.common_tolerance:.2f} %), channel {worst} by "
                 f"{100 * self.change[worst]:+.2f} % (threshold {100 * self.channel_tolerance[worst]:.2f} %) since the "
                 f"correction in force; the fit leaves up to {100 * self.fit.excess.max():.2f} % of the readout beyond the capture noise")
        if self.uncorrectable:
            then = ("the run stopped here: start a new run after that, or restore the bench and --resume "
                    "(--drift-every 0: continue without checks, knowingly)" if self.first_index >= 0
                    else "the inputs since the previous check may be affected")
            return UNCORRECTABLE_EVENT, f"{moved}; {self.uncorrectable}; {then}"
        if self.corrected:
            why = " (follow-up of the previous check's correction)" if self.follow_up else ""
            return DRIFT_EVENT, f"{moved}; readout scale re-fitted{why} (epoch {self.epoch}) from input {self.first_index} on"
        if self.moved:
            return DRIFT_EVENT, f"{moved}; not applied (no input left)"
        return None


class DriftMonitor:
    """Checks the bench's response between batches (from the capture thread) and keeps
    ``processor.scale`` corrected; :meth:`record` writes a check from the thread that owns the record.

    ``pooled``: the standard errors of earlier checks of this run (a resume's), (checks, C) and
    (checks,), pooled with the start captures' and this session's."""

    column = EPOCH_COLUMN

    def __init__(
        self, settings: DriftSettings, capture: Callable[[], FrameBatch], processor: OpticalInference,
        baseline: Baseline, checks_done: int = 0, last_epoch: int = 0, check_first: bool = False,
        pooled: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        self.settings = settings
        self._capture = capture
        self._processor = processor
        self._scale = processor.scale  # the run's own (epoch 0)
        self._baseline = baseline
        self._in_force = ResponseFit.identity(baseline.readout.shape[1])
        self._checks = checks_done
        self._last_epoch = last_epoch
        self.epoch = 0
        self._check_first = check_first
        self._follow_up = False  # the last check corrected: the next one re-fits whatever it finds
        # sums of the variance of a change between two captures: the start captures', and each
        # check's scaled to it (a check against the mean of N captures has 1 + 1/N of one capture's
        # variance: Baseline.check_variance_ratio)
        self._var_sum = baseline.gain_se.astype(np.float64) ** 2
        self._common_var_sum = float(baseline.common_se) ** 2
        self._var_n = 1
        ratio = baseline.check_variance_ratio
        if pooled is not None and len(pooled[0]):
            self._var_sum = self._var_sum + ratio * (np.asarray(pooled[0], dtype=np.float64) ** 2).sum(axis=0)
            self._common_var_sum += ratio * float((np.asarray(pooled[1], dtype=np.float64) ** 2).sum())
            self._var_n += len(pooled[0])

    @property
    def gain_se(self) -> tuple[np.ndarray, float]:
        """Pooled standard error of a gain change between two captures: per channel, and common-mode."""
        return np.sqrt(self._var_sum / self._var_n), float(np.sqrt(self._common_var_sum / self._var_n))

    @property
    def tolerances(self) -> tuple[float, np.ndarray]:
        """The gain changes that are corrected, common-mode and per channel: the settings' tolerance or
        :data:`GAIN_SIGMAS` (per channel :func:`channel_sigmas`) pooled standard errors of a change,
        whichever is larger (a bench whose frames vary cannot resolve a smaller change with these references)."""
        channel_se, common_se = self.gain_se
        tolerance = self.settings.gain_tolerance
        return (max(tolerance, GAIN_SIGMAS * common_se),
                np.maximum(tolerance, channel_sigmas(channel_se.size) * channel_se))

    def due(self, batch_number: int) -> bool:
        """Whether a check precedes batch ``batch_number`` (0-based, of this session)."""
        if not self.settings.enabled:
            return False
        if batch_number == 0:
            return self._check_first
        return batch_number % self.settings.every_batches == 0

    def check(self, first_index: int, inputs_done: int) -> DriftCheck:
        """Show the references, fit their readouts on the baseline, and correct the scale if the gain
        moved (``first_index`` -1: the run is over, nothing is corrected). The check after a
        correction re-fits the scale even below the tolerances, once: a step of the laser power in
        the middle of a check's frames is only partly in its gain, and a drift goes on. A capture whose
        fit leaves more than ``residual_limit`` beyond the noise on any channel is suspect: the
        references are captured again at once, and only a channel beyond it in both stops the run."""
        frames = self._capture()
        fit = fit_response(self._baseline, self._processor.readout(frames.data))
        recheck = None
        if np.any(fit.excess > self.settings.residual_limit):  # suspect: confirm on a second capture
            recheck = fit_response(self._baseline, self._processor.readout(self._capture().data)).excess
        ratio = self._baseline.check_variance_ratio
        self._var_sum = self._var_sum + ratio * fit.gain_se**2
        self._common_var_sum += ratio * fit.common_se**2
        self._var_n += 1
        common_tolerance, channel_tolerance = self.tolerances
        change = fit.gain / self._in_force.gain - 1
        common_change = fit.common_gain / self._in_force.common_gain - 1
        self._checks += 1
        uncorrectable = self._uncorrectable(fit, recheck)
        moved = moved_beyond(change, common_change, channel_tolerance, common_tolerance)
        follow_up = self._follow_up and not moved
        corrected = False
        if not uncorrectable and first_index >= 0 and (moved or follow_up):
            self._in_force = fit
            self._last_epoch += 1
            self.epoch = self._last_epoch
            self._processor.scale = corrected_scale(self._scale, fit)
            corrected = True
        self._follow_up = corrected and moved
        return DriftCheck(self._checks, first_index, inputs_done, time.time(), float(np.mean(frames.timestamps_s)), fit,
                          change, float(common_change), self.epoch, corrected, uncorrectable, common_tolerance,
                          channel_tolerance, follow_up and corrected, recheck)

    def _uncorrectable(self, fit: ResponseFit, recheck: np.ndarray | None) -> str:
        """Why no gain can undo the change: a shape change both captures show (``recheck``: the
        immediate re-capture's excess, None when the first capture was within the limit), or too
        little light; "" when a gain can."""
        limit = self.settings.residual_limit
        beyond = np.flatnonzero((fit.excess > limit) & (recheck > limit)) if recheck is not None else np.zeros(0, int)
        if beyond.size:
            return (f"{SHAPE_CHANGED} on {beyond.size} channel(s) {beyond[:8].tolist()}: the gain fit leaves "
                    f"{100 * fit.excess[beyond].max():.2f} % of the readout beyond the capture noise, and "
                    f"{100 * recheck[beyond].max():.2f} % on an immediate re-capture of the references "
                    f"(limit {100 * limit:.2f} %): re-calibrate registration/phase (labctl calibrate)")
        dim = np.flatnonzero(~(fit.gain > MIN_CORRECTABLE_GAIN))
        if dim.size:
            return (f"the references read {fit.gain[dim].min():.3f} of their baseline on channel(s) {dim[:8].tolist()}: "
                    "too little light to rescale: check the light source")
        return ""

    @staticmethod
    def record(record: RunRecord, check: DriftCheck) -> None:
        """Add ``check`` to the record's drift history and log its events, if any. A table begun
        before the re-capture's columns (``suspect``, ``recheck_excess``: a resumed record) gets rows
        without them; the events still say what a re-capture found."""
        row = check.row()
        history = record.table(CHECKS_TABLE)
        if history is not None:
            row = {key: value for key, value in row.items() if key in (history.dtype.names or ())}
        record.append_row(CHECKS_TABLE, row)
        for kind, message in check.events():
            record.log_event(kind, message, check.first_index)


def dark_frames(acquirer: Any, groups: int, n: int = DARK_FRAMES) -> np.ndarray:
    """``n`` shutter-dark frames (:meth:`Acquirer.dark_frames`) shaped as a capture's data for
    ``groups`` channel groups: (n, H, W), or (n, groups, H, W) with the same frames in every group."""
    frames = acquirer.dark_frames(n)
    return frames if groups <= 1 else np.repeat(frames[:, None], groups, axis=1)


def open_monitor(
    record: RunRecord, settings: DriftSettings, candidates: np.ndarray, capture: Callable[[np.ndarray], FrameBatch],
    processor: OpticalInference, resume: bool, dark: Callable[[], np.ndarray] | None = None,
) -> DriftMonitor | None:
    """The run's monitor: the recorded baseline on resume (checked to be of the same references),
    else a new one captured now and recorded; None when the run has no drift checks.

    ``candidates``: modulator amplitudes of the readout-scale inputs, whose first ``inputs`` (as
    recorded, on resume) are the references; ``capture`` shows amplitudes and returns their frames;
    ``dark`` returns dark frames shaped as a capture's data (:func:`dark_frames`; None: the readout
    of no light is taken as 0). A record made without a monitor gets none on resume (there is no
    baseline, and no column to say which inputs were corrected); a record made with one keeps its
    column, its references and its thresholds, and ``settings.every_batches`` (0 included) sets how
    often this session checks. A record stopped before its baseline was stored (so before its first
    input) gets one now."""
    saved = record.attr(SETTINGS_ATTR)
    if saved is None and EPOCH_COLUMN.name not in {c.name for c in record.columns}:
        if resume and settings.enabled:
            warnings.warn(f"{record.path} was recorded without drift checks (no baseline); this resume runs without them",
                          DriftMonitorWarning, stacklevel=2)
        return None
    if saved is not None:
        recorded = _recorded_settings(record, saved)
        references = candidates[: recorded.inputs]
        if saved.get("references_sha256") != _digest(references):
            raise RunRecordError(f"{record.path}: this run's drift reference inputs are not the recorded ones "
                                 "(same data and --scale-inputs as before?)")
        baseline = record.array(BASELINE_ARRAY)
        if baseline is None or baseline.shape[:2] != (recorded.inputs, processor.layout.channels):
            raise RunRecordError(f"{record.path}: the drift baseline is missing or not of {recorded.inputs} references "
                                 f"x {processor.layout.channels} channels")
        history = record.table(CHECKS_TABLE)
        checks, last_epoch = (0, 0) if history is None else (int(history["number"].max()), int(history["epoch"].max()))
        start = _recorded_start(record, saved, torch.from_numpy(baseline), processor.layout.channels, settings.enabled)
        pooled = None if history is None or "gain_se" not in (history.dtype.names or ()) else (history["gain_se"], history["common_se"])
        return DriftMonitor(replace(recorded, every_batches=settings.every_batches), lambda: capture(references), processor,
                            start, checks, last_epoch, check_first=True, pooled=pooled)
    settings = replace(settings, inputs=min(settings.inputs, len(candidates)))
    references = candidates[: settings.inputs]
    captures = []
    for spacer in START_SPACERS:
        if spacer:
            capture(references[np.arange(spacer) % len(references)])
        captures.append(processor.readout(capture(references).data))
    dark_dn = np.zeros(processor.layout.channels) if dark is None else \
        processor.readout(dark()).double().mean(dim=(0, 2, 3)).numpy()
    start = Baseline.of(*captures, dark_dn=dark_dn)
    record.put_array(BASELINE_ARRAY, start.readout.numpy())
    record.set_attr(SETTINGS_ATTR, {"format": FORMAT, "settings": asdict(settings), "noise_dn": start.noise_dn.tolist(),
                                    "dark_dn": start.dark_dn.tolist(), "gain_se": start.gain_se.tolist(),
                                    "common_se": start.common_se, "captures": start.captures,
                                    "references_sha256": _digest(references),
                                    "references": f"the first {settings.inputs} training inputs"})
    return DriftMonitor(settings, lambda: capture(references), processor, start)


def _digest(references: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(references, dtype=np.float32).tobytes()).hexdigest()


def _recorded_settings(record: RunRecord, saved: Any) -> DriftSettings:
    try:
        return DriftSettings(**saved["settings"])
    except (KeyError, TypeError, ValueError) as exc:
        raise RunRecordError(f"{record.path}: the recorded drift settings ({saved!r:.200}) are malformed: {exc}") from None


def _recorded_start(record: RunRecord, saved: Any, readout: torch.Tensor, channels: int, checking: bool) -> Baseline:
    """The recorded baseline with its capture noise (per-pixel RMS, DN), dark level (DN) and the start
    pair's standard errors. A record of the first monitor (no ``format``) has no dark level and no
    standard errors: refused when this session checks, a baseline that is never compared otherwise."""
    if saved.get("format", 1) != FORMAT:
        if checking:
            raise RunRecordError(
                f"{record.path} was recorded by an earlier drift monitor (format {saved.get('format', 1)}: one capture "
                f"pair's gain spread as its threshold, no dark level), whose checks this one cannot continue; resume with "
                f"--drift-every 0 (no checks), or start a new run")
        zero = np.zeros(channels)
        return Baseline(readout, zero, zero, zero, 0.0)
    values = {}
    for key in ("noise_dn", "dark_dn", "gain_se", "common_se"):
        try:
            values[key] = np.asarray(saved[key], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise RunRecordError(f"{record.path}: the recorded drift {key} is malformed: {exc!r}") from None
        shape = () if key == "common_se" else (channels,)
        if values[key].shape != shape or not np.all(np.isfinite(values[key])) or (key != "dark_dn" and np.any(values[key] < 0)):
            raise RunRecordError(f"{record.path}: the recorded drift {key} {values[key].tolist()!r:.200} is not "
                                 f"{'one' if not shape else channels} finite number(s)" + ("" if key == "dark_dn" else " >= 0"))
    captures = saved.get("captures", 2)  # a record made before the staggered start: its pair
    if not isinstance(captures, int) or isinstance(captures, bool) or captures < 2:
        raise RunRecordError(f"{record.path}: the recorded drift captures {captures!r:.50} is not a whole number >= 2")
    return Baseline(readout, values["noise_dn"], values["dark_dn"], values["gain_se"], float(values["common_se"]), captures)
