"""Stray light: laser light scattered by lens surfaces, mounts and the SLM's cover glass that reaches
the sensor outside the 4f imaging path.

A fixed fraction of the power leaving the input modulator, spread over the sensor as a smooth, broad
glow (a wide Gaussian lobe off the axis, the way a ghost reflection or a scattering mount lights a
sensor) on a uniform floor. It follows the light in the system (it is not a dark offset: the shutter
removes it) and it is not part of the image, so neither the dark frames nor the registration see it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StrayLight:
    fraction: float  # of the input power, reaching the whole sensor
    lobe_center: tuple[float, float]  # (y, x) in units of the sensor's half-size
    lobe_width: float  # 1/e² radius, in units of the sensor's half-size
    floor: float  # share of the uniform floor in the stray power

    def share(self, rows: int, cols: int) -> np.ndarray:
        """Share of the stray power landing on each pixel (sums to 1)."""
        y = np.linspace(-1, 1, rows)[:, None] - self.lobe_center[0]
        x = np.linspace(-1, 1, cols)[None, :] - self.lobe_center[1]
        lobe = np.exp(-2 * (x**2 + y**2) / self.lobe_width**2)
        shape = self.floor / lobe.size + (1 - self.floor) * lobe / lobe.sum()
        return shape / shape.sum()


def draw_stray_light(rng: np.random.Generator, fraction: float) -> StrayLight:
    return StrayLight(
        fraction=fraction * rng.uniform(0.7, 1.0),
        lobe_center=tuple(float(v) for v in rng.uniform(-0.8, 0.8, size=2)),  # type: ignore[arg-type]
        lobe_width=float(rng.uniform(0.8, 1.6)),
        floor=float(rng.uniform(0.2, 0.5)),
    )
