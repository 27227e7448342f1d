"""Where the camera's pixels sit in the 4f output plane, and the ``grid_sample`` grid that reads them.

The same placement as :func:`labctl.optics.sampling.camera_sample_grid` (output (x, y) =
scale·R(θ)·(u, v) + shift), split in two so that the imaging path between the output plane and the
sensor (distortion, vignetting) can act on the positions in metres.
"""

from __future__ import annotations

import numpy as np
import torch

from labctl.optics.geometry import CameraPose
from labctl.optics.sampling import SimulationGrid


def pixel_positions_m(cam_rows: int, cam_cols: int, cam_pitch_m: float, pose: CameraPose) -> tuple[np.ndarray, np.ndarray]:
    """Output-plane (x, y) of each camera pixel centre, (cam_rows, cam_cols) each."""
    v = (np.arange(cam_rows) - (cam_rows - 1) / 2) * cam_pitch_m
    u = (np.arange(cam_cols) - (cam_cols - 1) / 2) * cam_pitch_m
    uu, vv = np.meshgrid(u, v)
    m = pose.matrix()
    return m[0, 0] * uu + m[0, 1] * vv + pose.shift_x_m, m[1, 0] * uu + m[1, 1] * vv + pose.shift_y_m


def half_diagonal_m(cam_rows: int, cam_cols: int, cam_pitch_m: float, pose: CameraPose) -> float:
    """Half the sensor's diagonal, measured in the output plane (the field height of its corners)."""
    return 0.5 * pose.scale * cam_pitch_m * float(np.hypot(cam_rows, cam_cols))


def sample_grid(grid: SimulationGrid, x_m: np.ndarray, y_m: np.ndarray) -> torch.Tensor:
    """``grid_sample`` grid (1, rows, cols, 2) reading the centred output intensity of ``grid`` at (x, y)."""
    dy, dx = grid.geometry.output_spacing_m
    gx = 2 * (x_m / dx + grid.cols // 2) / (grid.cols - 1) - 1
    gy = 2 * (y_m / dy + grid.rows // 2) / (grid.rows - 1) - 1
    return torch.from_numpy(np.stack([gx, gy], axis=-1)[None]).float()
