"""Time on the simulated bench.

Virtual by default: device timing (SLM settle, exposure, readout) advances a simulated clock, and
frame timestamps say when the bench would have delivered them, so rates are measurable without
waiting. With ``realtime=True`` the camera actually waits until each frame is due, so wall-clock
rates are those of the modelled devices (as a runner sees on a real bench).
"""

from __future__ import annotations

import time


class SimClock:
    def __init__(self, realtime: bool = False) -> None:
        self.realtime = realtime
        self._t0 = time.monotonic()
        self._virtual = 0.0

    def now(self) -> float:
        if self.realtime:
            return time.monotonic() - self._t0
        return self._virtual

    def wait_until(self, t: float) -> None:
        """Block (real time) or jump (virtual time) to simulated time ``t``."""
        if self.realtime:
            delay = t - (time.monotonic() - self._t0)
            if delay > 0:
                time.sleep(delay)
        else:
            self._virtual = max(self._virtual, t)
