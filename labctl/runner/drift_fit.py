"""The drift monitor's statistics (:mod:`labctl.runner.drift`): how a check's readouts of the
reference inputs compare with their baseline.

Two questions, two estimators. *Did the light change by a factor?* — each channel's light above its
dark level over the baseline's (:func:`light_gain`), with a jackknife standard error over the
references, because the frames vary as wholes (a DMD's PWM gray under a short exposure, the SLM's
flicker). *Can any factor undo the change?* — a least-squares slope-and-offset fit over every
reference pixel (:func:`fit_response`), whose residual beyond the capture noise (``excess``) says
the response changed shape. :func:`channel_sigmas` sets each channel's threshold so that all C
channels together false-alarm as rarely as one test; :func:`corrected_scale` is the readout scale
that undoes a gain.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import torch

from labctl.optics.channel_scale import ChannelScale

#: standard errors of the residual's variance that still count as capture noise
NOISE_SIGMAS = 4.0
#: standard errors of a gain change that still count as noise (the common-mode gain's test; each
#: channel's test is set to the same false-alarm rate per check over all channels: :func:`channel_sigmas`)
GAIN_SIGMAS = 4.0


@dataclass(frozen=True)
class LightGain:
    """Per channel, the ratio of a capture's light above the dark level to the baseline's, and its
    jackknife standard error over the references; the same for their mean over channels."""

    gain: np.ndarray  # (C,)
    se: np.ndarray  # (C,)
    common: float
    common_se: float


def light_gain(baseline: torch.Tensor | np.ndarray, current: torch.Tensor | np.ndarray, dark_dn: np.ndarray) -> LightGain:
    """Gains of ``current`` on ``baseline`` ((K, C, n, n) readouts of the same K inputs) above the
    per-channel dark level ``dark_dn`` (C,), summed over each channel's reference pixels.

    The standard error is a jackknife over the K references (each left out once): the frames vary
    as wholes (PWM phase, flicker), so K, not the pixels, is what an error estimate has. A channel
    with no light above its dark level reads gain 1 (nothing to compare); with one reference the
    error is 0 (not estimable)."""
    x = np.asarray(baseline, dtype=np.float64)
    y = np.asarray(current, dtype=np.float64)
    k, channels = x.shape[:2]
    dark = np.asarray(dark_dn, dtype=np.float64)[None, :]
    xs = x.reshape(k, channels, -1).sum(axis=2) - dark * x[0, 0].size  # (K, C): light above dark
    ys = y.reshape(k, channels, -1).sum(axis=2) - dark * y[0, 0].size

    def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        lit = den > 1e-9 * np.maximum(np.abs(xs).sum(axis=0), 1e-30)
        return np.where(lit, num / np.where(lit, den, 1), 1.0)

    gain = ratio(ys.sum(axis=0), xs.sum(axis=0))
    if k < 2:
        return LightGain(gain, np.zeros(channels), float(gain.mean()), 0.0)
    left_out = ratio(ys.sum(axis=0)[None] - ys, xs.sum(axis=0)[None] - xs)  # (K, C)
    spread = lambda v: np.sqrt((k - 1) / k * ((v - v.mean(axis=0)) ** 2).sum(axis=0))  # noqa: E731
    return LightGain(gain, spread(left_out), float(gain.mean()), float(spread(left_out.mean(axis=1))))


@dataclass(frozen=True)
class Baseline:
    """The references' readout at the start, the dark level, and how much one capture varies."""

    readout: torch.Tensor  # (K, C, n, n): the mean of the start captures, DN
    noise_dn: np.ndarray  # (C,) RMS per-pixel noise of one capture, from the start captures' spread
    dark_dn: np.ndarray  # (C,) readout of no light (shutter closed), mean over the channel's pixels
    gain_se: np.ndarray  # (C,) standard error of a change of gain between two captures (of one start capture on the one before)
    common_se: float  # the same for the common-mode (channel-mean) gain
    captures: int = 2  # start captures averaged in ``readout`` (its noise variance is noise_dn² / captures)

    @classmethod
    def of(cls, *captures: torch.Tensor, dark_dn: np.ndarray | None = None) -> Baseline:
        """From two or more captures of the references, (K, C, n, n) each. The noise is each pixel's
        spread over the captures, less each capture's own offset per channel (an offset that moved
        between them is not noise; a gain that did is, as it was for the pair), pooled over the
        channel's pixels; the gain's standard error
        pools the jackknife errors of each capture's gain on the one before."""
        if len(captures) < 2:
            raise ValueError(f"a baseline needs two or more captures of the references; got {len(captures)}")
        channels = captures[0].shape[1]
        dark = np.zeros(channels) if dark_dn is None else np.asarray(dark_dn, dtype=np.float64)
        x = np.stack([c.transpose(0, 1).reshape(channels, -1).double().numpy() for c in captures])  # (N, C, P)
        deviation = x - x.mean(axis=0)
        deviation -= deviation.mean(axis=2, keepdims=True)
        noise_var = (deviation**2).sum(axis=0).mean(axis=1) / (len(captures) - 1)
        pairs = [light_gain(a, b, dark) for a, b in zip(captures, captures[1:])]
        gain_se = np.sqrt(np.mean([p.se**2 for p in pairs], axis=0))
        common_se = float(np.sqrt(np.mean([p.common_se**2 for p in pairs])))
        return cls((sum(captures) / len(captures)).float(), np.sqrt(noise_var), dark, gain_se, common_se, len(captures))

    @property
    def check_variance_ratio(self) -> float:
        """A change between two captures over a check against this baseline, in variance:
        2 σ² / (σ² + σ²/N) (N start captures averaged; 4/3 for a pair)."""
        return 2 * self.captures / (self.captures + 1)


@dataclass(frozen=True)
class ResponseFit:
    """Per channel: the light gain on the baseline (:func:`light_gain`) and its standard error, the
    offset that gain implies (the dark level stays: ``dark · (1 − gain)``), the common-mode gain; and
    the least-squares ``slope · baseline + offset`` fit's RMS residual and what it leaves beyond the
    capture noise (``excess``), both relative to the channel's RMS baseline readout."""

    gain: np.ndarray  # (C,)
    offset_dn: np.ndarray  # (C,)
    residual: np.ndarray  # (C,)
    excess: np.ndarray  # (C,)
    slope: np.ndarray  # (C,) the least-squares fit's gain (shape test only)
    gain_se: np.ndarray  # (C,)
    common_gain: float
    common_se: float

    @classmethod
    def identity(cls, channels: int) -> ResponseFit:
        one, zero = np.ones(channels), np.zeros(channels)
        return cls(one, zero, zero, zero, one, zero, 1.0, 0.0)


def fit_response(baseline: Baseline, current: torch.Tensor) -> ResponseFit:
    """``current`` ((K, C, n, n) readouts of the baseline's K inputs) against the baseline, per channel.

    The gain is the light ratio above the dark level (:func:`light_gain`). Whether a gain can undo
    the change at all is a least-squares fit over every reference pixel, slope and offset free: its
    slope is cov / (var − the baseline's noise variance) (the baseline's noise spreads it without
    being in the current readout, and would otherwise pull the slope towards 0). The noise expected
    in its residual is the baseline's (σ²/N, its N start captures averaged) scaled by the slope, plus the
    current capture's (σ² × max(slope, 1): between read noise, which stays, and shot noise, which
    scales with the light), raised by :data:`NOISE_SIGMAS` standard errors of the two variance
    estimates (2/√K of it together) so that noise alone leaves no excess. K, the references, not
    their pixels: noise common to a frame (a DMD's PWM phase under a short exposure, the SLM's
    flicker) varies from frame to frame only, so K frames are all a variance estimate has of it."""
    channels = current.shape[1]
    x = baseline.readout.transpose(0, 1).reshape(channels, -1).double().numpy()
    y = current.transpose(0, 1).reshape(channels, -1).double().numpy()
    noise_var = baseline.noise_dn**2
    dx = x - x.mean(axis=1, keepdims=True)
    signal_var = (dx**2).mean(axis=1) - noise_var / baseline.captures
    flat = ~(signal_var > 0)
    slope = np.where(flat, 1.0, (dx * (y - y.mean(axis=1, keepdims=True))).mean(axis=1) / np.where(flat, 1, signal_var))
    offset = y.mean(axis=1) - slope * x.mean(axis=1)
    rms = np.sqrt((x**2).mean(axis=1))
    left_var = ((y - slope[:, None] * x - offset[:, None]) ** 2).mean(axis=1)
    dof = min(x.shape[1], baseline.readout.shape[0])
    expected_var = noise_var * (np.maximum(slope, 1) + slope**2 / baseline.captures) * (1 + NOISE_SIGMAS * 2 / np.sqrt(dof))
    safe = np.where(rms > 0, rms, 1)
    light = light_gain(baseline.readout.double().numpy(), current.double().numpy(), baseline.dark_dn)
    return ResponseFit(light.gain, baseline.dark_dn * (1 - light.gain), np.sqrt(left_var) / safe,
                       np.sqrt(np.maximum(left_var - expected_var, 0)) / safe, slope, light.se, light.common, light.common_se)


def channel_sigmas(channels: int) -> float:
    """Standard errors a channel's gain change must exceed so that C channels together false-alarm
    as often per check as one test at :data:`GAIN_SIGMAS` (Šidák: 4.0 for 1 channel, 4.6 for 16)."""
    normal = NormalDist()
    alpha = 2 * (1 - normal.cdf(GAIN_SIGMAS))
    per_channel = -np.expm1(np.log1p(-alpha) / max(channels, 1))
    return float(normal.inv_cdf(1 - per_channel / 2))


def corrected_scale(scale: ChannelScale, fit: ResponseFit) -> ChannelScale:
    """The run's scale for a response that moved by ``fit``: reading r = g·b + o of a baseline
    readout b, detected = gain · (r − o) / g + offset."""
    return ChannelScale(scale.gain / fit.gain, scale.offset - scale.gain * fit.offset_dn / fit.gain)
