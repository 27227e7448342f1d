"""Sampling geometry of a coherent 4f system.

The Fourier-plane SLM has pitch ``p_F``; with N pixels per side, an N-point transform relates it to
input-plane samples ``λ·f1 / (N·p_F)`` apart and output-plane samples ``λ·f2 / (N·p_F)`` apart, over a
window ``λ·f2/p_F`` wide: the spacing of the pixelated SLM's diffraction orders. The model samples
the Fourier plane finer than that (:mod:`labctl.optics.sampling`) so that its window holds every
displacement from the modulator to the camera.

Arrays are *centred*: index ``N//2`` lies on the optical axis. Coordinates are (x = column, y = row).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FourFGeometry:
    wavelength_m: float
    f1_m: float
    f2_m: float
    rows: int  # Fourier SLM rows = simulation grid rows
    cols: int
    fourier_pitch_m: float

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.cols)

    @property
    def input_spacing_m(self) -> tuple[float, float]:
        """(dy, dx) of input-plane samples."""
        k = self.wavelength_m * self.f1_m / self.fourier_pitch_m
        return (k / self.rows, k / self.cols)

    @property
    def output_spacing_m(self) -> tuple[float, float]:
        """(dy, dx) of output-plane samples."""
        k = self.wavelength_m * self.f2_m / self.fourier_pitch_m
        return (k / self.rows, k / self.cols)

    @property
    def magnification(self) -> float:
        """Output over input size; the image is also inverted (x → −x)."""
        return self.f2_m / self.f1_m

    def fourier_coords_m(self) -> tuple[np.ndarray, np.ndarray]:
        """Fourier-plane positions (y column vector, x row vector) of the SLM pixel centres."""
        y = (np.arange(self.rows) - self.rows // 2) * self.fourier_pitch_m
        x = (np.arange(self.cols) - self.cols // 2) * self.fourier_pitch_m
        return y[:, None], x[None, :]

    def output_shift_m(self, freq_y_per_m: float, freq_x_per_m: float) -> tuple[float, float]:
        """Output-plane shift produced by a Fourier-plane phase ramp ``exp(i2π(k·x))``: ``λ·f2·k``."""
        return (self.wavelength_m * self.f2_m * freq_y_per_m, self.wavelength_m * self.f2_m * freq_x_per_m)

    def ramp_frequency_for_shift(self, shift_y_m: float, shift_x_m: float) -> tuple[float, float]:
        """Spatial frequency (cycles/m on the Fourier SLM) of the ramp that shifts the output by ``shift``."""
        k = self.wavelength_m * self.f2_m
        return (shift_y_m / k, shift_x_m / k)


@dataclass(frozen=True)
class CameraPose:
    """Where the sensor sits in the output plane: output (x, y) = scale·R(θ)·(u, v) + shift.

    ``(u, v)`` are positions on the sensor relative to its centre, in metres. ``defocus_m`` is the
    sensor's axial distance from the back focal plane of the second lens.
    """

    shift_x_m: float = 0.0
    shift_y_m: float = 0.0
    rotation_rad: float = 0.0
    scale: float = 1.0
    defocus_m: float = 0.0

    def matrix(self) -> np.ndarray:
        c, s = np.cos(self.rotation_rad), np.sin(self.rotation_rad)
        return self.scale * np.array([[c, -s], [s, c]])


def camera_half_extent_m(cam_rows: int, cam_cols: int, cam_pitch_m: float, pose: CameraPose) -> tuple[float, float]:
    """(y, x) half-extent in the output plane, about the optical axis, of the camera's pixels under ``pose``."""
    v = np.array([-1, -1, 1, 1]) * (cam_rows / 2) * cam_pitch_m
    u = np.array([-1, 1, -1, 1]) * (cam_cols / 2) * cam_pitch_m
    m = pose.matrix()
    x = m[0, 0] * u + m[0, 1] * v + pose.shift_x_m
    y = m[1, 0] * u + m[1, 1] * v + pose.shift_y_m
    return float(np.abs(y).max()), float(np.abs(x).max())


def camera_pixel_area_ratio(geometry: FourFGeometry, cam_pitch_m: float, pose: CameraPose) -> float:
    """Camera pixel footprint over one output-plane sample cell (power per sample → per pixel)."""
    dy, dx = geometry.output_spacing_m
    return (pose.scale * cam_pitch_m) ** 2 / (dx * dy)


def input_to_camera_affine(
    geometry: FourFGeometry,
    in_rows: int,
    in_cols: int,
    in_pitch_m: float,
    cam_rows: int,
    cam_cols: int,
    cam_pitch_m: float,
    pose: CameraPose,
) -> np.ndarray:
    """2×3 affine taking input-modulator pixel (col, row) to camera pixel (col, row).

    Input position u_in → output plane −M·u_in (4f imaging inverts) → sensor via the inverse pose.
    """
    mag = geometry.magnification
    # input pixel index → input-plane metres
    a_in = np.array([[in_pitch_m, 0, -(in_cols - 1) / 2 * in_pitch_m], [0, in_pitch_m, -(in_rows - 1) / 2 * in_pitch_m]])
    a_in = np.vstack([a_in, [0, 0, 1]])
    invert = np.diag([-mag, -mag, 1.0])
    m_inv = np.linalg.inv(pose.matrix())
    to_sensor = np.eye(3)
    to_sensor[:2, :2] = m_inv
    to_sensor[:2, 2] = -m_inv @ np.array([pose.shift_x_m, pose.shift_y_m])
    to_pixels = np.array(
        [[1 / cam_pitch_m, 0, (cam_cols - 1) / 2], [0, 1 / cam_pitch_m, (cam_rows - 1) / 2], [0, 0, 1]]
    )
    return (to_pixels @ to_sensor @ invert @ a_in)[:2]


def pose_from_affine(
    geometry: FourFGeometry,
    in_rows: int,
    in_cols: int,
    in_pitch_m: float,
    cam_rows: int,
    cam_cols: int,
    cam_pitch_m: float,
    affine: np.ndarray,
) -> CameraPose:
    """The camera pose (shift, rotation, scale) whose :func:`input_to_camera_affine` is ``affine``.

    Inverts that composition for a measured registration, so that a digital twin can place its
    camera where the bench's is. Shear, which a rigid sensor cannot have, is averaged out.
    """
    nominal = input_to_camera_affine(geometry, in_rows, in_cols, in_pitch_m, cam_rows, cam_cols, cam_pitch_m, CameraPose())
    a = np.asarray(affine, dtype=np.float64)
    # affine = P·m⁻¹·(X − s) and nominal = P·X (P: metres → camera px, X: input px → output metres)
    k = cam_pitch_m  # P's linear part is I/k
    x_lin = nominal[:, :2] * k
    x_off = (nominal[:, 2] - np.array([(cam_cols - 1) / 2, (cam_rows - 1) / 2])) * k
    m_inv = (a[:, :2] * k) @ np.linalg.inv(x_lin)
    m = np.linalg.inv(m_inv)
    scale = float(np.sqrt(abs(np.linalg.det(m))))
    rotation = float(np.arctan2(m[1, 0] - m[0, 1], m[0, 0] + m[1, 1]))
    t = (a[:, 2] - np.array([(cam_cols - 1) / 2, (cam_rows - 1) / 2])) * k
    shift = x_off - m @ t
    return CameraPose(float(shift[0]), float(shift[1]), rotation, scale)
