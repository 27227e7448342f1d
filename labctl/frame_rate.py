"""The frame rate a bench's devices allow: per input, the input modulator settles, then the camera
exposes and reads out, one after the other (as the runner's timing model and the simulated bench
have them). The optical front end of the efficiency analysis runs at this rate."""

from __future__ import annotations

from drivers.bench import Bench
from drivers.capabilities import readout_s

#: the rate assumed where no bench is named: LC SLMs switch at ~60-500 Hz and scientific cameras
#: deliver ~100 full frames/s (shared/REFERENCES.md, "Physical rates")
DEFAULT_FRAME_RATE_HZ = 100.0


def device_limited_rate_hz(bench: Bench) -> float:
    """Frames per second of ``bench``: 1 / (input-modulator settle + exposure + camera readout)."""
    camera = bench.camera
    return 1.0 / (bench.input_slm.settle_time_s + camera.exposure_s + readout_s(camera))
