"""Temporal phase flicker of an LC panel.

The LC director ripples with the panel's addressing (the drive voltage is refreshed and its polarity
flipped many times a second), so the retardance of every pixel fluctuates: a frame sees the phase
``φ·(1 + ε)``, ε a zero-mean fluctuation of RMS ``rms_rad / 2π`` (``rms_rad`` at a 2π level; a flat
zero-phase pixel does not flicker). Each exposure samples the ripple at its own moment, so ε is
drawn per frame, from the device seed and the exposure's start time: the same run gives the same
flicker, whatever the frames are rendered with. It averages out over frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_STREAM = 211


@dataclass(frozen=True)
class Flicker:
    rms_rad: float  # RMS phase fluctuation of a pixel at 2π
    seed: int

    def retardance_noise(self, times_s: np.ndarray) -> np.ndarray:
        """Relative retardance fluctuation ε of each frame starting at ``times_s``."""
        sigma = self.rms_rad / (2 * np.pi)
        ticks = np.rint(np.asarray(times_s, dtype=np.float64) * 1e9).astype(np.int64)  # ns
        return np.array([sigma * np.random.default_rng([self.seed, _STREAM, int(t)]).standard_normal() for t in ticks])


def draw_flicker(rng: np.random.Generator, rms_rad: float, seed: int) -> Flicker:
    return Flicker(rms_rad * rng.uniform(0.8, 1.0), seed)
