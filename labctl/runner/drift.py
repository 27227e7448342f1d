"""The drift monitor: reference inputs shown again every few batches of a long run, their readouts
compared with those at the start, and the readout scale corrected when the response has moved.

A bench drifts while it runs (the laser's power and pointing, the LC's retardance as the panel
warms): the per-channel gain and offset fitted before the run (:func:`fit_channel_scale`) are then
wrong for the later inputs. A few training inputs (never evaluated ones) are captured twice at the
start: their mean readout is the *baseline*, and the difference of the two captures says how noisy
one capture is. Every ``every_batches`` batches they are captured again, through the same channel
groups and readout as the run's inputs, and each channel's readouts are fitted as ``gain · baseline
+ offset`` over every reference pixel (:func:`fit_response`; the slope corrected for the baseline's
own noise, which would bias it low by up to a few per cent on a noisy camera):

- a gain that moved from the correction in force by more than ``gain_tolerance``, or by more than
  the two start captures' gains differ (×4) on a bench whose frames vary, is a drift a readout
  scale can undo: the scale is re-fitted (the fit composed with the run's scale), an event
  says by how much and from which input, and later inputs are read under the new correction;
- what the fit leaves beyond the capture noise (``excess``), if above ``residual_limit`` of the
  channel's RMS readout, means the response changed shape, not just size (the beam or the pattern
  moved, the phase response drifted): no gain can undo it, so the run stops before the next input,
  with an event that says to re-calibrate registration/phase. Stopping rather than continuing,
  because every later result would be silently wrong; a stopped run is resumable, and a resume
  first checks the references against the recorded baseline, so it continues only on a bench that
  is back in order (after a re-calibration the resume is refused, as any change of calibration is:
  start a new run; ``--drift-every 0`` resumes without checks, for an operator who accepts it).

The record keeps the baseline (array ``drift_baseline``), the settings and capture noise (attribute
``drift``), every check (table ``drift_checks``, :mod:`labctl.records.drift_history`) and, per
input, the correction epoch it was read under (column ``drift_epoch``; 0 is the run's own scale,
epoch k the correction of the check that started it). A resume reuses the baseline; its first batch
is preceded by a check, because the bench may have changed while the run was stopped.
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
                                          UNCORRECTABLE_EVENT)
from labctl.records.run_record import Column, RunRecord, RunRecordError
from labctl.runner.drift_settings import DriftSettings
from labctl.runner.optical_inference import ChannelScale, OpticalInference

#: the per-input column: the correction epoch each input was read under
EPOCH_COLUMN = Column(EPOCH_COLUMN_NAME, (), "i4")
BASELINE_ARRAY = "drift_baseline"
#: standard errors of the residual's variance that still count as capture noise
NOISE_SIGMAS = 4.0
#: references reading less than this share of their baseline light: the signal is too weak to be
#: rescaled (the exposure and the readout scale should be measured again)
MIN_CORRECTABLE_GAIN = 0.25


class DriftMonitorWarning(UserWarning):
    """A resume asked for drift checks on a record that has no baseline for them."""


@dataclass(frozen=True)
class Baseline:
    """The references' readout at the start and how much one capture of it varies."""

    readout: torch.Tensor  # (K, C, n, n): the mean of two captures, DN
    noise_dn: np.ndarray  # (C,) RMS per-pixel noise of one capture, from the two captures' difference
    gain_noise: float  # RMS over channels of the second capture's gain on the first's, minus 1

    @classmethod
    def of(cls, first: torch.Tensor, second: torch.Tensor) -> Baseline:
        channels = first.shape[1]
        x = first.transpose(0, 1).reshape(channels, -1).double().numpy()
        y = second.transpose(0, 1).reshape(channels, -1).double().numpy()
        difference = x - y
        noise_var = ((difference - difference.mean(axis=1, keepdims=True)) ** 2).mean(axis=1) / 2
        dx = x - x.mean(axis=1, keepdims=True)
        signal_var = (dx**2).mean(axis=1) - noise_var
        flat = ~(signal_var > 0)
        gain = np.where(flat, 1.0, (dx * (y - y.mean(axis=1, keepdims=True))).mean(axis=1) / np.where(flat, 1, signal_var))
        return cls(((first + second) / 2).float(), np.sqrt(noise_var), float(np.sqrt(np.mean((gain - 1) ** 2))))


@dataclass(frozen=True)
class ResponseFit:
    """Per channel: readout ≈ gain · baseline + offset_dn; the RMS of what that leaves, and of what it
    leaves beyond the capture noise (``excess``), both relative to the channel's RMS baseline readout."""

    gain: np.ndarray  # (C,)
    offset_dn: np.ndarray  # (C,)
    residual: np.ndarray  # (C,)
    excess: np.ndarray  # (C,)

    @classmethod
    def identity(cls, channels: int) -> ResponseFit:
        return cls(np.ones(channels), np.zeros(channels), np.zeros(channels), np.zeros(channels))


def fit_response(baseline: Baseline, current: torch.Tensor) -> ResponseFit:
    """Gain and offset of ``current`` on the baseline, per channel, over every reference pixel:
    (K, C, n, n) readouts of the same K inputs.

    The slope is cov / (var − the baseline's noise variance): the baseline's noise spreads it
    without being in the current readout, and would otherwise pull every gain towards 0. The noise
    expected in the residual is the baseline's (σ²/2, two captures averaged) scaled by the gain, plus
    the current capture's (σ² × max(gain, 1): between read noise, which stays, and shot noise, which
    scales with the light), raised by :data:`NOISE_SIGMAS` standard errors of the two variance
    estimates (2/√K of it together) so that noise alone leaves no excess. K, the references, not
    their pixels: noise common to a frame (a DMD's PWM phase under a short exposure, the SLM's
    flicker) varies from frame to frame only, so K frames are all a variance estimate has of it."""
    channels = current.shape[1]
    x = baseline.readout.transpose(0, 1).reshape(channels, -1).double().numpy()
    y = current.transpose(0, 1).reshape(channels, -1).double().numpy()
    noise_var = baseline.noise_dn**2
    dx = x - x.mean(axis=1, keepdims=True)
    signal_var = (dx**2).mean(axis=1) - noise_var / 2
    flat = ~(signal_var > 0)
    gain = np.where(flat, 1.0, (dx * (y - y.mean(axis=1, keepdims=True))).mean(axis=1) / np.where(flat, 1, signal_var))
    offset = y.mean(axis=1) - gain * x.mean(axis=1)
    rms = np.sqrt((x**2).mean(axis=1))
    left_var = ((y - gain[:, None] * x - offset[:, None]) ** 2).mean(axis=1)
    dof = min(x.shape[1], baseline.readout.shape[0])
    expected_var = noise_var * (np.maximum(gain, 1) + gain**2 / 2) * (1 + NOISE_SIGMAS * 2 / np.sqrt(dof))
    safe = np.where(rms > 0, rms, 1)
    return ResponseFit(gain, offset, np.sqrt(left_var) / safe, np.sqrt(np.maximum(left_var - expected_var, 0)) / safe)


def corrected_scale(scale: ChannelScale, fit: ResponseFit) -> ChannelScale:
    """The run's scale for a response that moved by ``fit``: reading r = g·b + o of a baseline
    readout b, detected = gain · (r − o) / g + offset."""
    return ChannelScale(scale.gain / fit.gain, scale.offset - scale.gain * fit.offset_dn / fit.gain)


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
    epoch: int  # the correction epoch in force after it
    corrected: bool
    uncorrectable: str  # why no gain can undo the change ("": it can)
    gain_tolerance: float  # the change that counted

    def row(self) -> dict[str, Any]:
        return {
            "number": self.number, "first_index": self.first_index, "inputs_done": self.inputs_done,
            "wall_time_s": self.wall_time_s, "camera_time_s": self.camera_time_s, "gain": self.fit.gain,
            "offset_dn": self.fit.offset_dn, "residual": self.fit.residual, "excess": self.fit.excess, "epoch": self.epoch,
            "corrected": self.corrected, "uncorrectable": bool(self.uncorrectable),
        }

    def event(self) -> tuple[str, str] | None:
        """(kind, message) for the record's events; None when nothing moved beyond the tolerances."""
        where = f"before input {self.first_index}" if self.first_index >= 0 else "after the last input"
        worst = int(np.argmax(np.abs(self.change)))
        moved = (f"check {self.number} ({where}, {self.inputs_done} inputs done): gain moved by up to "
                 f"{100 * self.change[worst]:+.2f} % (channel {worst}; median {100 * np.median(self.change):+.2f} %; "
                 f"tolerance {100 * self.gain_tolerance:.2f} %) since the correction in force; the fit leaves up to {100 * self.fit.excess.max():.2f} % of the "
                 "readout beyond the capture noise")
        if self.uncorrectable:
            then = ("the run stopped here: start a new run after that, or restore the bench and --resume "
                    "(--drift-every 0: continue without checks, knowingly)" if self.first_index >= 0
                    else "the inputs since the previous check may be affected")
            return UNCORRECTABLE_EVENT, f"{moved}; {self.uncorrectable}; {then}"
        if self.corrected:
            return DRIFT_EVENT, f"{moved}; readout scale re-fitted (epoch {self.epoch}) from input {self.first_index} on"
        if np.max(np.abs(self.change)) > self.gain_tolerance:
            return DRIFT_EVENT, f"{moved}; not applied (no input left)"
        return None


class DriftMonitor:
    """Checks the bench's response between batches (from the capture thread) and keeps
    ``processor.scale`` corrected; :meth:`record` writes a check from the thread that owns the record."""

    column = EPOCH_COLUMN

    def __init__(
        self, settings: DriftSettings, capture: Callable[[], FrameBatch], processor: OpticalInference,
        baseline: Baseline, checks_done: int = 0, last_epoch: int = 0, check_first: bool = False,
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

    @property
    def gain_tolerance(self) -> float:
        """The gain change that is corrected: the settings' tolerance, or :data:`NOISE_SIGMAS` times
        how much the gain of two captures of unchanged references differs, whichever is larger (a
        bench whose frames vary a lot cannot resolve a smaller change with these references)."""
        return max(self.settings.gain_tolerance, NOISE_SIGMAS * self._baseline.gain_noise)

    def due(self, batch_number: int) -> bool:
        """Whether a check precedes batch ``batch_number`` (0-based, of this session)."""
        if not self.settings.enabled:
            return False
        if batch_number == 0:
            return self._check_first
        return batch_number % self.settings.every_batches == 0

    def check(self, first_index: int, inputs_done: int) -> DriftCheck:
        """Show the references, fit their readouts on the baseline, and correct the scale if the gain
        moved (``first_index`` -1: the run is over, nothing is corrected)."""
        frames = self._capture()
        fit = fit_response(self._baseline, self._processor.readout(frames.data))
        change = fit.gain / self._in_force.gain - 1
        self._checks += 1
        uncorrectable = self._uncorrectable(fit)
        corrected = False
        if not uncorrectable and first_index >= 0 and np.max(np.abs(change)) > self.gain_tolerance:
            self._in_force = fit
            self._last_epoch += 1
            self.epoch = self._last_epoch
            self._processor.scale = corrected_scale(self._scale, fit)
            corrected = True
        return DriftCheck(self._checks, first_index, inputs_done, time.time(), float(np.mean(frames.timestamps_s)), fit,
                          change, self.epoch, corrected, uncorrectable, self.gain_tolerance)

    def _uncorrectable(self, fit: ResponseFit) -> str:
        beyond = np.flatnonzero(fit.excess > self.settings.residual_limit)
        if beyond.size:
            return (f"the response changed shape on {beyond.size} channel(s) {beyond[:8].tolist()}: the gain fit leaves "
                    f"{100 * fit.excess[beyond].max():.2f} % of the readout beyond the capture noise "
                    f"(limit {100 * self.settings.residual_limit:.2f} %): re-calibrate registration/phase (labctl calibrate)")
        dim = np.flatnonzero(~(fit.gain > MIN_CORRECTABLE_GAIN))
        if dim.size:
            return (f"the references read {fit.gain[dim].min():.3f} of their baseline on channel(s) {dim[:8].tolist()}: "
                    "too little light to rescale: check the light source")
        return ""

    @staticmethod
    def record(record: RunRecord, check: DriftCheck) -> None:
        """Add ``check`` to the record's drift history and log its event, if any."""
        record.append_row(CHECKS_TABLE, check.row())
        event = check.event()
        if event is not None:
            record.log_event(event[0], event[1], check.first_index)


def open_monitor(
    record: RunRecord, settings: DriftSettings, candidates: np.ndarray, capture: Callable[[np.ndarray], FrameBatch],
    processor: OpticalInference, resume: bool,
) -> DriftMonitor | None:
    """The run's monitor: the recorded baseline on resume (checked to be of the same references),
    else a new one captured now and recorded; None when the run has no drift checks.

    ``candidates``: modulator amplitudes of the readout-scale inputs, whose first ``inputs`` (as
    recorded, on resume) are the references; ``capture`` shows amplitudes and returns their frames.
    A record made without a monitor gets none on resume (there is no baseline, and no column to say
    which inputs were corrected); a record made with one keeps its column, its references and its
    thresholds, and ``settings.every_batches`` (0 included) sets how often this session checks. A
    record stopped before its baseline was stored (so before its first input) gets one now."""
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
        noise_dn, gain_noise = _recorded_noise(record, saved, processor.layout.channels)
        history = record.table(CHECKS_TABLE)
        checks, last_epoch = (0, 0) if history is None else (int(history["number"].max()), int(history["epoch"].max()))
        return DriftMonitor(replace(recorded, every_batches=settings.every_batches), lambda: capture(references), processor,
                            Baseline(torch.from_numpy(baseline), noise_dn, gain_noise), checks, last_epoch, check_first=True)
    settings = replace(settings, inputs=min(settings.inputs, len(candidates)))
    references = candidates[: settings.inputs]
    start = Baseline.of(processor.readout(capture(references).data), processor.readout(capture(references).data))
    record.put_array(BASELINE_ARRAY, start.readout.numpy())
    record.set_attr(SETTINGS_ATTR, {"settings": asdict(settings), "noise_dn": start.noise_dn.tolist(),
                                    "gain_noise": start.gain_noise,
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


def _recorded_noise(record: RunRecord, saved: Any, channels: int) -> tuple[np.ndarray, float]:
    """The recorded capture noise: per-pixel RMS per channel (DN) and the gain's spread."""
    try:
        noise_dn = np.asarray(saved["noise_dn"], dtype=np.float64)
        gain_noise = float(saved["gain_noise"])
    except (KeyError, TypeError, ValueError) as exc:
        raise RunRecordError(f"{record.path}: the recorded drift capture noise is malformed: {exc}") from None
    if noise_dn.shape != (channels,) or not np.all(np.isfinite(noise_dn) & (noise_dn >= 0)):
        raise RunRecordError(f"{record.path}: the recorded drift capture noise {noise_dn.tolist()!r:.200} is not "
                             f"{channels} finite number(s) >= 0")
    if not (np.isfinite(gain_noise) and gain_noise >= 0):
        raise RunRecordError(f"{record.path}: the recorded drift gain noise {gain_noise!r} is not a finite number >= 0")
    return noise_dn, gain_noise
