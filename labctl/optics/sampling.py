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

from labctl.optics.cpu import frames_per_step, one_cpu_thread
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

    For the whole modulator (no ``origin``), the pixels sit symmetrically about the axis, so each
    matrix splits into its cosine part (even in the pixel position) and its sine part (odd):
    ``E = C − iS``. The input is folded about its centre (``A[j] ± A[n−1−j]``) and only half the
    pixels enter each product, and only ``|f_x|`` is computed: ``U(f_y, ±|f_x|) = G ∓ iH`` with
    ``G = E_y·A·C_xᵀ`` and ``H = E_y·A·S_xᵀ``. The same sums, about a quarter of the multiplications.
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
        # Folded (cosine / sine) matrices for the whole, centred modulator: E = C − iS.
        # x: |f_x| = 0 … cols − ⌈cols/2⌉ (the most negative FFT-order frequency is −cols//2),
        # pixels j < ⌈n/2⌉ (cosine, the middle one of an odd count included) and j < ⌊n/2⌋ (sine).
        n_pos_x = (cols + 1) // 2  # FFT-order columns of non-negative frequency
        ex_abs = _pixel_dft(cols, dx, in_cols, in_pitch_m, np.arange(cols - n_pos_x + 1.0))
        self.cx_t = torch.from_numpy(np.ascontiguousarray(ex_abs.real[:, : (in_cols + 1) // 2].T)).float()
        self.sx_t = torch.from_numpy(np.ascontiguousarray(-ex_abs.imag[:, : in_cols // 2].T)).float()
        # y: every FFT-order row (signed frequencies)
        ey_fft = _pixel_dft(rows, dy, in_rows, in_pitch_m, _fft_order(rows))
        self.cy = torch.from_numpy(np.ascontiguousarray(ey_fft.real[:, : (in_rows + 1) // 2])).float()
        self.neg_sy = torch.from_numpy(np.ascontiguousarray(ey_fft.imag[:, : in_rows // 2])).float()  # −S_y
        # y at |f_y| = 0 … rows − ⌈rows/2⌉ only (apply_into: the rows of negative f_y by symmetry)
        ey_abs = _pixel_dft(rows, dy, in_rows, in_pitch_m, np.arange(rows - (rows + 1) // 2 + 1.0))
        self.cy_abs = torch.from_numpy(np.ascontiguousarray(ey_abs.real[:, : (in_rows + 1) // 2])).float()
        self.neg_sy_abs = torch.from_numpy(np.ascontiguousarray(ey_abs.imag[:, : in_rows // 2])).float()
        self._n_pos_x = n_pos_x

    def to(self, device: torch.device | str) -> InputSpectrum:
        """The same sampling with its matrices on ``device``."""
        moved = object.__new__(InputSpectrum)
        moved.__dict__.update(self.__dict__)
        names = ("ey", "ex_re", "ex_im", "neg_rows", "cx_t", "sx_t", "cy", "neg_sy", "cy_abs", "neg_sy_abs")
        for name in names:
            setattr(moved, name, getattr(self, name).to(device))
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
        if origin is None or (h, w) == self.input_shape:
            if amplitude.device.type == "cpu" and not (torch.is_grad_enabled() and amplitude.requires_grad):
                return self._apply_in_steps(amplitude)
            return self._apply_folded(amplitude)
        half = torch.complex(amplitude @ self.ex_re[c0 : c0 + w], amplitude @ self.ex_im[c0 : c0 + w])
        y = self.ey[:, r0 : r0 + h] @ half  # (..., rows(+1), half + 1)
        rows = self.grid.rows
        positive = y[..., self.neg_rows, 1 : self._positive_cols + 1].conj()  # U(f) = conj U(−f)
        negative = y[..., :rows, 1:].flip(-1)  # x-frequencies −cols//2 … −1
        return torch.cat([y[..., :rows, :1], positive, negative], dim=-1)

    def _folded_products(self, amplitude: torch.Tensor, all_rows: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """``[C_y·A·C_xᵀ | C_y·A·S_xᵀ]`` and ``−[S_y·A·C_xᵀ | S_y·A·S_xᵀ]`` at every FFT-order row
        (``all_rows``; else at |f_y| = 0, 1, …) and ``|f_x|`` (each (..., rows, 2·(|f_x| max + 1))),
        for the whole modulator's ``amplitude``."""
        n_r = self.input_shape[0]
        lead = amplitude.shape[:-2]
        even_x, odd_x = _fold(amplitude, -1)  # (..., n_r, ⌈n_c/2⌉), (..., n_r, ⌊n_c/2⌋)
        k = self.cx_t.shape[1]
        p = (even_x.flatten(0, -2) @ self.cx_t).reshape(*lead, n_r, k)  # A·C_xᵀ (one matrix product)
        q = (odd_x.flatten(0, -2) @ self.sx_t).reshape(*lead, n_r, k)  # A·S_xᵀ
        p_even, p_odd = _fold(p, -2)
        q_even, q_odd = _fold(q, -2)
        cy, neg_sy = (self.cy, self.neg_sy) if all_rows else (self.cy_abs, self.neg_sy_abs)
        return cy @ torch.cat([p_even, q_even], dim=-1), neg_sy @ torch.cat([p_odd, q_odd], dim=-1)

    def _apply_folded(self, amplitude: torch.Tensor) -> torch.Tensor:
        """:meth:`apply` for the whole modulator, by its cosine and sine parts (see the class)."""
        cos_y, neg_sin_y = self._folded_products(amplitude)
        k, n_pos = cos_y.shape[-1] // 2, self._n_pos_x
        cc, cs, sc, ss = cos_y[..., :k], cos_y[..., k:], neg_sin_y[..., :k], neg_sin_y[..., k:]
        # sc, ss hold −S_y·…: U(f_y, +|f_x|) = (cc + ss) + i(sc − cs); U(f_y, −|f_x|) = (cc − ss) + i(cs + sc)
        real = torch.cat([(cc + ss)[..., :n_pos], (cc - ss)[..., 1:].flip(-1)], dim=-1)
        imag = torch.cat([(sc - cs)[..., :n_pos], (cs + sc)[..., 1:].flip(-1)], dim=-1)
        return torch.complex(real, imag)

    def _apply_in_steps(self, amplitude: torch.Tensor) -> torch.Tensor:
        """:meth:`apply` without gradients on the CPU: :meth:`apply_into` a frame or a few at a time
        (:mod:`labctl.optics.cpu`), into one array of the whole batch."""
        lead = amplitude.shape[:-2]
        frames = amplitude.reshape(-1, *self.input_shape)
        out = torch.empty((frames.shape[0], *self.grid.shape), dtype=torch.complex64)
        step = frames_per_step(frames.shape[0], self.grid.rows * self.grid.cols, amplitude.device)
        with one_cpu_thread(amplitude.device):
            for start in range(0, frames.shape[0], step):
                self.apply_into(frames[start : start + step], out[start : start + step])
        return out.reshape(*lead, *self.grid.shape)

    def apply_into(self, amplitude: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """:meth:`apply` of the whole modulator's real ``amplitude`` (B, rows_in, cols_in), written into
        ``out`` (complex64 (B, rows, cols)); not differentiable (the simulator's path).

        The products are formed at |f_y| only (half the rows); with α = cc + ss, β = cc − ss,
        γ = sc − cs, δ = cs + sc (sc, ss holding −S_y·…) the four quadrants of the spectrum are
        U(+f_y, +f_x) = α + iγ, U(+f_y, −f_x) = β + iδ, U(−f_y, +f_x) = β − iδ, U(−f_y, −f_x) = α − iγ."""
        if tuple(amplitude.shape[-2:]) != self.input_shape:
            raise OpticsModelError(f"apply_into takes the whole {self.input_shape[0]}x{self.input_shape[1]} modulator")
        cos_y, neg_sin_y = self._folded_products(amplitude.to(self.cx_t.dtype), all_rows=False)
        k = cos_y.shape[-1] // 2
        cc, cs, sc, ss = cos_y[..., :k], cos_y[..., k:], neg_sin_y[..., :k], neg_sin_y[..., k:]
        p_r, p_c = (self.grid.rows + 1) // 2, self._n_pos_x  # FFT-order rows / columns of f ≥ 0
        parts = torch.view_as_real(out)
        re, im = parts[..., 0], parts[..., 1]
        torch.add(cc[..., :p_r, :p_c], ss[..., :p_r, :p_c], out=re[..., :p_r, :p_c])  # α
        torch.sub(sc[..., :p_r, :p_c], cs[..., :p_r, :p_c], out=im[..., :p_r, :p_c])  # γ
        beta, delta = cc - ss, cs + sc
        flip = torch.ops.aten.flip.out
        flip(beta[..., :p_r, 1:], [-1], out=re[..., :p_r, p_c:])
        flip(delta[..., :p_r, 1:], [-1], out=im[..., :p_r, p_c:])
        flip(beta[..., 1:, :p_c], [-2], out=re[..., p_r:, :p_c])
        flip(delta[..., 1:, :p_c].neg_(), [-2], out=im[..., p_r:, :p_c])
        alpha = torch.add(cc[..., 1:, 1:], ss[..., 1:, 1:], out=beta[..., 1:, 1:])  # β is written out
        flip(alpha, [-2, -1], out=re[..., p_r:, p_c:])
        minus_gamma = torch.sub(cs[..., 1:, 1:], sc[..., 1:, 1:], out=delta[..., 1:, 1:])
        flip(minus_gamma, [-2, -1], out=im[..., p_r:, p_c:])
        return out


def _fold(x: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sums and differences of the entries ``j`` and ``n−1−j`` of ``x`` along ``dim``, for ``j < n/2``:
    (even part, ⌈n/2⌉ entries, the middle one of an odd count kept once; odd part, ⌊n/2⌋ entries)."""
    n = x.shape[dim]
    lo = x.narrow(dim, 0, n // 2)
    hi = x.narrow(dim, n - n // 2, n // 2).flip(dim)
    even = lo + hi
    if n % 2:
        even = torch.cat([even, x.narrow(dim, n // 2, 1)], dim=dim)
    return even, lo - hi


def _camera_sample_positions(
    grid: SimulationGrid, cam_rows: int, cam_cols: int, cam_pitch_m: float, pose: CameraPose
) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) positions, in samples of the centred output intensity, of the camera pixel centres."""
    v = (np.arange(cam_rows) - (cam_rows - 1) / 2) * cam_pitch_m
    u = (np.arange(cam_cols) - (cam_cols - 1) / 2) * cam_pitch_m
    uu, vv = np.meshgrid(u, v)
    m = pose.matrix()
    x = m[0, 0] * uu + m[0, 1] * vv + pose.shift_x_m
    y = m[1, 0] * uu + m[1, 1] * vv + pose.shift_y_m
    dy, dx = grid.geometry.output_spacing_m
    return y / dy + grid.rows // 2, x / dx + grid.cols // 2


def camera_sample_grid(grid: SimulationGrid, cam_rows: int, cam_cols: int, cam_pitch_m: float, pose: CameraPose) -> torch.Tensor:
    """``grid_sample`` grid (1, cam_rows, cam_cols, 2) of camera pixel centres on the centred output
    intensity of ``grid``."""
    row, col = _camera_sample_positions(grid, cam_rows, cam_cols, cam_pitch_m, pose)
    gx = 2 * col / (grid.cols - 1) - 1
    gy = 2 * row / (grid.rows - 1) - 1
    return torch.from_numpy(np.stack([gx, gy], axis=-1)[None]).float()


def camera_sample_window(
    grid: SimulationGrid, cam_rows: int, cam_cols: int, cam_pitch_m: float, pose: CameraPose
) -> tuple[slice, slice, torch.Tensor]:
    """The part of the centred output intensity that bilinear sampling at the camera pixel centres
    reads — (row slice, col slice) — and the ``grid_sample`` grid (1, cam_rows, cam_cols, 2) of those
    centres on that window (``align_corners=True``, zero padding: the same samples as
    :func:`camera_sample_grid` on the whole intensity; centres off the intensity read zeros)."""
    row, col = _camera_sample_positions(grid, cam_rows, cam_cols, cam_pitch_m, pose)

    def window(pos: np.ndarray, n: int) -> slice:
        lo = int(np.clip(np.floor(pos.min()), 0, n - 1))
        hi = int(np.clip(np.ceil(pos.max()), 0, n - 1)) + 1
        if hi - lo < 2:  # grid_sample needs two samples per axis to place the centres
            lo, hi = (lo, lo + 2) if lo + 2 <= n else (n - 2, n)
        return slice(lo, hi)

    rows, cols = window(row, grid.rows), window(col, grid.cols)
    gx = 2 * (col - cols.start) / (cols.stop - cols.start - 1) - 1
    gy = 2 * (row - rows.start) / (rows.stop - rows.start - 1) - 1
    return rows, cols, torch.from_numpy(np.stack([gx, gy], axis=-1)[None]).float()
