"""Documented ranges of the simulated devices' arguments, and the simulator's memory budget.

The simulator renders up to :data:`RENDER_CHUNK` frames in one vectorised physics call, so its memory
grows with the frames of a chunk times each device's pixels. Per pixel and per frame of a chunk it
needs about :data:`RENDER_BYTES_PER_PIXEL` bytes (measured on the CPU: 128 frames of a 480×480
camera took 612 MB over a 120×120 one, 512×512 Fourier SLM 942 MB over 128×128, 400×400 input
modulator 321 MB over 100×100; rounded up). A simulated device whose chunk would need more than
:data:`MEMORY_BUDGET_BYTES` is refused at construction, before anything of its size is allocated.
"""

from __future__ import annotations

from drivers.limits import within_budget

#: frames per physics call; bounds memory at large batches
RENDER_CHUNK = 128
#: bytes per device pixel and frame of a render chunk, by simulated device
RENDER_BYTES_PER_PIXEL = {"camera": 24, "fourier_slm": 32, "input_slm": 16}
#: the most memory one simulated device's render chunk may need
MEMORY_BUDGET_BYTES = 8 * 2**30

SEED_RANGE = (0, 2**32 - 1)
SLM_BIT_DEPTH_RANGE = (1, 16)
CAMERA_BIT_DEPTH_RANGE = (8, 16)
SETTLE_TIME_RANGE_S = (0.0, 10.0)
#: the simulated beam's power: any positive finite power (tests drive the camera into saturation with kW)
LASER_POWER_RANGE_W = (1e-15, 1e6)
LINE_TIME_RANGE_S = (0.0, 1e-2)
DEFOCUS_RANGE_M = (-1e-2, 1e-2)
#: scale of the drawn misalignment (1: as drawn; 10 keeps the sensor's drawn scale above 0.7)
MISALIGNMENT_RANGE = (0.0, 10.0)
BUFFER_SIZE_RANGE = (1, 2**20)
#: frame or pattern numbers at which a fault is injected
FAULT_INDEX_RANGE = (0, 2**40)


def check_render_memory(device: str, rows: int, cols: int) -> None:
    """Refuse a ``device`` (a key of :data:`RENDER_BYTES_PER_PIXEL`) grid whose render chunk would
    need more than :data:`MEMORY_BUDGET_BYTES`."""
    per_pixel = RENDER_BYTES_PER_PIXEL[device]
    within_budget(
        f"simulating a {rows}x{cols} {device} (rows x cols; {RENDER_CHUNK} frames per render at {per_pixel} bytes "
        "per pixel and frame)",
        RENDER_CHUNK * rows * cols * per_pixel, MEMORY_BUDGET_BYTES, "mock_hw.budget.MEMORY_BUDGET_BYTES",
    )
