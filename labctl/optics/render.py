"""Frames through the 4f model in bulk and without gradients: the simulator's path.

The physics is that of :meth:`~labctl.optics.sampling.InputSpectrum.apply`, then
:func:`~labctl.optics.propagation.output_intensity`, then bilinear sampling at the camera's pixel
centres (:func:`~labctl.optics.sampling.camera_sample_grid`); only the arithmetic is arranged for speed:

- on the CPU, a frame or a few at a time (:mod:`labctl.optics.cpu`), the modulator's field too, in
  buffers that are reused: a fresh array of a whole batch costs its page faults on every call, and a
  small one stays in cache between the steps that touch it;
- the input spectrum is written in place (:meth:`~labctl.optics.sampling.InputSpectrum.apply_into`)
  and multiplied in place by the Fourier transmission; the second lens transforms into a reused
  buffer, its orthonormal scale folded into the camera's factor;
- those many small steps run on one CPU thread (:func:`labctl.optics.cpu.one_cpu_thread`);
- |field|² is formed only over the window that the camera's sampling reads
  (:func:`~labctl.optics.sampling.camera_sample_window`), and the second lens's column transforms
  only for that window's columns.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from labctl.optics.cpu import frames_per_step, one_cpu_thread
from labctl.optics.sampling import InputSpectrum


class FrameRenderer:
    """Camera-plane power of batches of modulator fields through one Fourier transmission at a time.

    ``spectrum``: the input sampling; ``rows``, ``cols``, ``sample``: the window of the centred output
    intensity the camera reads and the ``grid_sample`` grid on it; ``scale``: power per output sample →
    per camera pixel (a number, or a tensor broadcast over the camera's pixels).
    """

    def __init__(
        self, spectrum: InputSpectrum, rows: slice, cols: slice, sample: torch.Tensor, scale: float | torch.Tensor,
    ) -> None:
        self.spectrum = spectrum
        self.rows, self.cols = rows, cols
        self.sample = sample
        m_r, m_c = spectrum.grid.shape
        self.scale = scale / (m_r * m_c)  # the second lens's orthonormal scale, squared
        self._buffers: dict[str, torch.Tensor] = {}

    def _buffer(self, name: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape or buf.dtype != dtype or buf.device != device:
            buf = self._buffers[name] = torch.empty(shape, dtype=dtype, device=device)
        return buf

    @torch.no_grad()
    def render(self, field: torch.Tensor | Callable[[slice], torch.Tensor], transmission: torch.Tensor, frames: int | None = None) -> torch.Tensor:
        """``field``: real amplitudes (B, rows_in, cols_in) leaving the modulator (√W per pixel), or a
        function giving those of the frames in a slice of the batch (``frames`` of them, then);
        ``transmission``: the Fourier plane's (rows, cols), FFT order → power (W) on each camera
        pixel, (B, cam_rows, cam_cols), on ``transmission``'s device."""
        n = field.shape[0] if isinstance(field, torch.Tensor) else frames
        if n is None:
            raise TypeError("render: give the number of frames with a field function")
        field_of = field.__getitem__ if isinstance(field, torch.Tensor) else field
        device = transmission.device
        out = torch.empty((n, *self.sample.shape[1:3]), dtype=torch.float32, device=device)
        step = frames_per_step(n, self.spectrum.grid.rows * self.spectrum.grid.cols, device)
        with one_cpu_thread(device):
            for start in range(0, n, step):
                self._render_step(field_of, transmission, out, start, min(step, n - start))
        return out

    def _render_step(
        self, field_of: Callable[[slice], torch.Tensor], transmission: torch.Tensor, out: torch.Tensor, start: int, b: int,
    ) -> None:
        device = transmission.device
        m_r, m_c = self.spectrum.grid.shape
        w_r, w_c = self.rows.stop - self.rows.start, self.cols.stop - self.cols.start
        spectrum = self._buffer("spectrum", (b, m_r, m_c), torch.complex64, device)
        lensed = self._buffer("lensed", (b, m_r, m_c), torch.complex64, device)
        intensity = self._buffer("intensity", (b, w_r, w_c), torch.float32, device)
        self.spectrum.apply_into(field_of(slice(start, start + b)), spectrum)
        spectrum.mul_(transmission)
        torch.fft.fft(spectrum, dim=-1, out=lensed)  # the second lens, along rows ...
        window = torch.fft.fft(lensed[..., self.cols], dim=-2)[..., self.rows, :]  # ... and the window's columns
        parts = torch.view_as_real(window)
        torch.mul(parts[..., 0], parts[..., 0], out=intensity)
        intensity.addcmul_(parts[..., 1], parts[..., 1])
        sampled = F.grid_sample(
            intensity[:, None], self.sample.expand(b, -1, -1, -1), mode="bilinear", padding_mode="zeros", align_corners=True,
        )[:, 0]
        torch.mul(sampled, self.scale, out=out[start : start + b])
