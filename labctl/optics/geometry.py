"""Sampling geometry of a coherent 4f system.

The Fourier-plane SLM sets the simulation grid: one sample per SLM pixel, so the Fourier plane is
sampled at the SLM pitch ``p_F``. An N-sample FFT then fixes the input-plane sampling at
``λ·f1 / (N·p_F)`` and the output-plane sampling at ``λ·f2 / (N·p_F)``. The window is periodic: its
width ``λ·f2/p_F`` is the spacing of the pixelated SLM's diffraction orders, so wrap-around in the
model is the neighbouring order, which is physical.

Arrays are *centred*: index ``N//2`` lies on the optical axis. Coordinates are (x = column, y = row).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


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

    def output_coords_m(self) -> tuple[np.ndarray, np.ndarray]:
        dy, dx = self.output_spacing_m
        return (np.arange(self.rows) - self.rows // 2)[:, None] * dy, (np.arange(self.cols) - self.cols // 2)[None, :] * dx

    def output_shift_m(self, freq_y_per_m: float, freq_x_per_m: float) -> tuple[float, float]:
        """Output-plane shift produced by a Fourier-plane phase ramp ``exp(i2π(k·x))``: ``λ·f2·k``."""
        return (self.wavelength_m * self.f2_m * freq_y_per_m, self.wavelength_m * self.f2_m * freq_x_per_m)

    def ramp_frequency_for_shift(self, shift_y_m: float, shift_x_m: float) -> tuple[float, float]:
        """Spatial frequency (cycles/m on the Fourier SLM) of the ramp that shifts the output by ``shift``."""
        k = self.wavelength_m * self.f2_m
        return (shift_y_m / k, shift_x_m / k)


def _overlap_matrix(n_dst: int, spacing_dst: float, n_src: int, pitch_src: float, fill: float) -> np.ndarray:
    """Fraction of each destination sample cell covered by each source pixel's aperture (centred grids)."""
    dst_c = (np.arange(n_dst) - n_dst // 2) * spacing_dst
    src_c = (np.arange(n_src) - (n_src - 1) / 2) * pitch_src
    half_ap = 0.5 * fill * pitch_src
    lo = np.maximum(dst_c[:, None] - spacing_dst / 2, src_c[None, :] - half_ap)
    hi = np.minimum(dst_c[:, None] + spacing_dst / 2, src_c[None, :] + half_ap)
    return np.clip(hi - lo, 0.0, None) / spacing_dst


@dataclass(frozen=True)
class InputSampling:
    """Maps a modulator image ``(rows_in, cols_in)`` onto the simulation grid: ``Ry @ A @ Rx.T``."""

    ry: torch.Tensor
    rx: torch.Tensor

    @classmethod
    def build(
        cls, geometry: FourFGeometry, in_rows: int, in_cols: int, in_pitch_m: float, fill: float = 1.0
    ) -> InputSampling:
        dy, dx = geometry.input_spacing_m
        ry = _overlap_matrix(geometry.rows, dy, in_rows, in_pitch_m, np.sqrt(fill))
        rx = _overlap_matrix(geometry.cols, dx, in_cols, in_pitch_m, np.sqrt(fill))
        return cls(torch.from_numpy(ry).float(), torch.from_numpy(rx).float())

    def apply(self, image: torch.Tensor) -> torch.Tensor:
        """``image``: (..., rows_in, cols_in) real → (..., rows, cols) on the simulation grid."""
        return self.ry @ image @ self.rx.T


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


def camera_sample_grid(
    geometry: FourFGeometry, cam_rows: int, cam_cols: int, cam_pitch_m: float, pose: CameraPose
) -> torch.Tensor:
    """``grid_sample`` grid (1, cam_rows, cam_cols, 2) of camera pixel centres in the output plane."""
    v = (np.arange(cam_rows) - (cam_rows - 1) / 2) * cam_pitch_m
    u = (np.arange(cam_cols) - (cam_cols - 1) / 2) * cam_pitch_m
    uu, vv = np.meshgrid(u, v)
    m = pose.matrix()
    x = m[0, 0] * uu + m[0, 1] * vv + pose.shift_x_m
    y = m[1, 0] * uu + m[1, 1] * vv + pose.shift_y_m
    dy, dx = geometry.output_spacing_m
    ix = x / dx + geometry.cols // 2
    iy = y / dy + geometry.rows // 2
    gx = 2 * ix / (geometry.cols - 1) - 1
    gy = 2 * iy / (geometry.rows - 1) - 1
    return torch.from_numpy(np.stack([gx, gy], axis=-1)[None]).float()


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
