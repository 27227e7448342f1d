"""Seeded fault injection for the simulated bench, so that runner recovery can be tested.

Faults a real bench shows: a camera that misses a trigger (the frame never arrives: a timeout), a
camera whose link drops (every call fails until it is closed and reopened), an SLM write that fails
(nothing is shown). Rates are per event; ``*_at`` lists fire at given event counts exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class FaultPlan:
    """Decides, event by event, whether a fault fires. Same seed, same faults."""

    rate: float = 0.0
    at: list[int] = field(default_factory=list)
    seed: int = 0
    events: int = 0
    fired: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate < 1.0:
            raise ValueError(f"fault rate must be in [0, 1); got {self.rate}")
        self._rng = np.random.default_rng([self.seed, 7919])
        self._pending = sorted(int(a) for a in self.at)

    @property
    def active(self) -> bool:
        return self.rate > 0 or bool(self._pending)

    def fires(self) -> bool:
        """Count one event; True if a fault happens on it."""
        n = self.events
        self.events += 1
        hit = False
        if self._pending and self._pending[0] <= n:
            self._pending.pop(0)
            hit = True
        elif self.rate > 0 and self._rng.random() < self.rate:
            hit = True
        self.fired += hit
        return hit
