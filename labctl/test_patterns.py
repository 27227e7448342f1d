"""Test patterns for the input modulator: something whose image is easy to recognise on a camera."""

from __future__ import annotations

import numpy as np


def resolution_target(rows: int, cols: int) -> np.ndarray:
    """Amplitude in [0, 1]: a frame, bar groups of three widths and an off-centre disc (breaks symmetry,
    so image inversion and rotation are visible)."""
    img = np.zeros((rows, cols))
    m = max(2, min(rows, cols) // 20)
    img[m : 2 * m, m:-m] = img[-2 * m : -m, m:-m] = 1
    img[m:-m, m : 2 * m] = img[m:-m, -2 * m : -m] = 1
    y0 = rows // 3
    x = 3 * m
    for width in (max(1, m // 2), m, 2 * m):
        for _ in range(3):
            img[y0 : y0 + 4 * m, x : x + width] = 1
            x += 2 * width
        x += 2 * m
    yy, xx = np.mgrid[:rows, :cols]
    disc = (yy - 0.7 * rows) ** 2 + (xx - 0.65 * cols) ** 2 < (min(rows, cols) / 8) ** 2
    img[disc] = 1
    return img
