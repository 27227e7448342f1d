"""How the 4f model samples the light: a Fourier plane sampled finer than the SLM pitch, and the input
spectrum computed exactly from the modulator's pixels.

Why finer: one sample per SLM pixel makes the output window exactly one diffraction order wide
(``W = λ·f2/p_F``), so an FFT pair computes a *circular* convolution: light displaced past the window
edge re-enters on the other side with the weight of a displacement it never had. A real 4f system
computes a linear convolution of the input with the inverse transform of the pixelated mask, whose
pixel aperture weights each displacement Δ by sinc(a·Δ/(λ·f2)). Sampling the Fourier plane at
``M > N`` points over the SLM widens the output window to ``M`` output samples; ``M`` is chosen so
that every displacement from a modulator pixel to a camera pixel stays inside half of it — a guard
band the grid enforces — and the convolution the FFT computes is then the linear one, with no wrap
at the border.

Why an exact DFT: the modulator's field is a sum of pixels, each a rect of the modulator pitch, so its
spectrum at Fourier-plane position ν is ``Σ_j a_j·exp(−i2π x_j ν/(λ f1))`` times the pixel's sinc. It is
evaluated at the sub-sample frequencies directly (two small matrix products), rather than resampling
the modulator onto a simulation grid (which low-passes and aliases the pixel edges).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from labctl.optics.errors import OpticsModelError
from labctl.optics.geometry import CameraPose, FourFGeometry, camera_half_extent_m

#: Largest window the model accepts, in diffraction orders: beyond it the camera sees orders no SLM
#: model here covers.
MAX_ORDERS = 4


def _fft_size(n: int) -> int:
    """The smallest 2^a·3^b·5^c ≥ ``n`` (sizes the FFT handles fastest)."""
    size = n
    while True:
        m = size
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return size
        size += 1


@dataclass(frozen=True)
class SimulationGrid:
    """The sampled Fourier plane: ``rows × cols`` samples over the SLM's area (at least one per SLM
    pixel), so an output window ``rows × cols`` output samples wide.

    Fourier-plane arrays are kept in FFT order (index 0 on the optical axis), output-plane
    intensities centred (index ``rows // 2`` on the axis) at the geometry's output spacing.
    """

    geometry: FourFGeometry
    rows: int
    cols: int

    def __post_init__(self) -> None:
        g = self.geometry
        if not (g.rows <= self.rows <= MAX_ORDERS * g.rows and g.cols <= self.cols <= MAX_ORDERS * g.cols):
            raise OpticsModelError(
                f"a {self.rows}x{self.cols} simulation grid for a {g.rows}x{g.cols} SLM: it must span 1 to "
                f"{MAX_ORDERS} diffraction orders (use a finer SLM pitch, a longer focal length or a smaller camera)"
            )

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.cols)

    @property
    def window_m(self) -> tuple[float, float]:
        """(height, width) of the output window."""
        dy, dx = self.geometry.output_spacing_m
        return (self.rows * dy, self.cols * dx)

    @classmethod
    def covering(
        cls, geometry: FourFGeometry, input_half_m: tuple[float, float], camera_half_m: tuple[float, float]
    ) -> SimulationGrid:
        """The smallest grid (FFT-friendly sizes) on which light from anywhere on the input modulator
        (half-extents (y, x) in the input plane) to anywhere on the camera (half-extents in the
        output plane, pose included) is displaced by less than half the window: the linear
        convolution, no wrap. Never coarser than one sample per SLM pixel."""
        mag = geometry.magnification
        dy, dx = geometry.output_spacing_m
        rows = 2 * math.ceil((input_half_m[0] * mag + camera_half_m[0]) / dy) + 2
        cols = 2 * math.ceil((input_half_m[1] * mag + camera_half_m[1]) / dx) + 2
        return cls(geometry, _fft_size(max(rows, geometry.rows)), _fft_size(max(cols, geometry.cols)))

    @classmethod
    def for_devices(
        cls, geometry: FourFGeometry, in_rows: int, in_cols: int, in_pitch_m: float,
        cam_rows: int, cam_cols: int, cam_pitch_m: float, pose: CameraPose,
    ) -> SimulationGrid:
        """:meth:`covering` the whole input modulator and the camera at ``pose``."""
        input_half = (in_rows * in_pitch_m / 2, in_cols * in_pitch_m / 2)
        return cls.covering(geometry, input_half, camera_half_extent_m(cam_rows, cam_cols, cam_pitch_m, pose))

    def displacements(self) -> tuple[np.ndarray, np.ndarray]:
        """Output-plane displacement of each kernel sample, in output samples (FFT order), per axis."""
        return _fft_order(self.rows), _fft_order(self.cols)

    def fourier_positions_m(self) -> tuple[np.ndarray, np.ndarray]:
        """Fourier-plane positions (y column, x row) of the sub-samples, FFT order."""
        g = self.geometry
        y, x = self.displacements()
        return y[:, None] * (g.rows * g.fourier_pitch_m / self.rows), x[None, :] * (g.cols * g.fourier_pitch_m / self.cols)


def _fft_order(n: int) -> np.ndarray:
    """Integer frequencies 0, 1, …, then the negative ones: numpy's ``fftfreq(n) · n``."""
    return np.rint(np.fft.fftfreq(n) * n)


def _pixel_dft(grid_n: int, spacing_m: float, n_pixels: int, pitch_m: float, freqs: np.ndarray) -> np.ndarray:
    """Exact spectrum per axis of ``n_pixels`` rect pixels (centred), at sub-sample frequencies
    ``freqs`` (integers, cycles per window): sinc(p·ν)·exp(−i2π x_j ν), scaled so that power is
    conserved from pixels (√W per pixel) to spectrum samples with an orthonormal FFT behind."""
    nu = freqs / (grid_n * spacing_m)  # cycles per metre in the input plane
    x = (np.arange(n_pixels) - (n_pixels - 1) / 2) * pitch_m
    scale = np.sqrt(pitch_m / (grid_n * spacing_m))
    return scale * np.sinc(pitch_m * nu)[:, None] * np.exp(-2j * np.pi * nu[:, None] * x[None, :])


class InputSpectrum:
    """Modulator field amplitudes (√W per pixel) → their exact spectrum on a :class:`SimulationGrid`.

    ``U = E_y · A · E_xᵀ``. Amplitudes are real, so the spectrum is Hermitian: only the columns of
    non-positive x-frequency are computed and the rest are their conjugates, which halves the work.
    """

    def __init__(self, grid: SimulationGrid, in_rows: int, in_cols: int, in_pitch_m: float) -> None:
        self.grid = grid
        self.input_shape = (in_rows, in_cols)
        rows, cols = grid.shape
        half = cols // 2
        dy, dx = grid.geometry.input_spacing_m  # unchanged by sub-sampling: the window grows instead
        fy = _fft_order(rows)
        if rows % 2 == 0:  # the +rows/2 row, the conjugate partner of the −rows/2 one
            fy = np.append(fy, rows // 2)
        fx = -np.arange(half + 1.0)  # 0, −1, …, −cols//2
        self.ey = torch.from_numpy(_pixel_dft(rows, dy, in_rows, in_pitch_m, fy)).to(torch.complex64)
        ex = _pixel_dft(cols, dx, in_cols, in_pitch_m, fx).T  # (in_cols, half + 1)
        self.ex_re = torch.from_numpy(np.ascontiguousarray(ex.real)).float()
        self.ex_im = torch.from_numpy(np.ascontiguousarray(ex.imag)).float()
        # row holding −f_y for each FFT-order row f_y
        index = {int(f): i for i, f in enumerate(fy)}
        self.neg_rows = torch.tensor([index[int(-f)] for f in fy[:rows]])
        self._positive_cols = cols - half - 1  # x-frequencies 1 … cols − half − 1

    def to(self, device: torch.device | str) -> InputSpectrum:
        """The same sampling with its matrices on ``device``."""
        moved = object.__new__(InputSpectrum)
        moved.__dict__.update(self.__dict__)
        moved.ey, moved.ex_re, moved.ex_im, moved.neg_rows = (
            t.to(device) for t in (self.ey, self.ex_re, self.ex_im, self.neg_rows)
        )
        return moved

    def apply(self, amplitude: torch.Tensor, origin: tuple[int, int] | None = None) -> torch.Tensor:
        """``amplitude``: real (..., rows_in, cols_in), or a patch of the modulator whose top-left
        pixel sits at ``origin`` = (row, col), the rest dark → spectrum (..., rows, cols), FFT order."""
        h, w = amplitude.shape[-2:]
        r0, c0 = origin if origin is not None else (0, 0)
        if r0 < 0 or c0 < 0 or r0 + h > self.input_shape[0] or c0 + w > self.input_shape[1]:
            raise OpticsModelError(
                f"a {h}x{w} patch at {(r0, c0)} leaves the {self.input_shape[0]}x{self.input_shape[1]} modulator"
            )
        amplitude = amplitude.to(self.ex_re.dtype)
        half = torch.complex(amplitude @ self.ex_re[c0 : c0 + w], amplitude @ self.ex_im[c0 : c0 + w])
        y = self.ey[:, r0 : r0 + h] @ half  # (..., rows(+1), half + 1)
        rows = self.grid.rows
        positive = y[..., self.neg_rows, 1 : self._positive_cols + 1].conj()  # U(f) = conj U(−f)
        negative = y[..., :rows, 1:].flip(-1)  # x-frequencies −cols//2 … −1
        return torch.cat([y[..., :rows, :1], positive, negative], dim=-1)


def camera_sample_grid(grid: SimulationGrid, cam_rows: int, cam_cols: int, cam_pitch_m: float, pose: CameraPose) -> torch.Tensor:
    """``grid_sample`` grid (1, cam_rows, cam_cols, 2) of camera pixel centres on the centred output
    intensity of ``grid``."""
    v = (np.arange(cam_rows) - (cam_rows - 1) / 2) * cam_pitch_m
    u = (np.arange(cam_cols) - (cam_cols - 1) / 2) * cam_pitch_m
    uu, vv = np.meshgrid(u, v)
    m = pose.matrix()
    x = m[0, 0] * uu + m[0, 1] * vv + pose.shift_x_m
    y = m[1, 0] * uu + m[1, 1] * vv + pose.shift_y_m
    dy, dx = grid.geometry.output_spacing_m
    gx = 2 * (x / dx + grid.cols // 2) / (grid.cols - 1) - 1
    gy = 2 * (y / dy + grid.rows // 2) / (grid.rows - 1) - 1
    return torch.from_numpy(np.stack([gx, gy], axis=-1)[None]).float()
