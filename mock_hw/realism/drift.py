"""Slow drift over a run, as a function of the bench's (virtual) clock.

A bench warms up after it is switched on: the LC's birefringence falls with temperature (the phase
response shrinks), the laser's output and its pointing settle. Each drift is a first-order approach
to a plateau, ``x(t) = A·(1 − exp(−t/τ))`` from the table's time zero: it grows with time, fastest at
the start (rate A/τ), and never saturates within a frame (τ is at least the longest exposure).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Drift:
    amplitude: float  # the plateau (a fraction, or metres for pointing)
    time_constant_s: float

    def at(self, t_s: np.ndarray | float) -> np.ndarray:
        return self.amplitude * -np.expm1(-np.asarray(t_s, dtype=np.float64) / self.time_constant_s)


def draw_drift(rng: np.random.Generator, magnitude: float, time_constant_s: float, signed: bool = True) -> Drift:
    """Plateau ``magnitude`` × U(0.7, 1), of random sign when ``signed``."""
    sign = rng.choice([-1.0, 1.0]) if signed else 1.0
    return Drift(float(sign * magnitude * rng.uniform(0.7, 1.0)), float(time_constant_s * rng.uniform(0.8, 1.2)))


def draw_pointing(rng: np.random.Generator, magnitude_m: float, time_constant_s: float) -> tuple[Drift, Drift]:
    """(y, x) drifts of the beam centre: one direction drawn, ``magnitude_m`` × U(0.7, 1) long."""
    angle = rng.uniform(0, 2 * np.pi)
    length = magnitude_m * rng.uniform(0.7, 1.0)
    tau = float(time_constant_s * rng.uniform(0.8, 1.2))
    return Drift(float(length * np.sin(angle)), tau), Drift(float(length * np.cos(angle)), tau)
