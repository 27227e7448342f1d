"""Spectral convolution layers (SCLC front end), after Xiang et al., Appl. Opt. 61:2173 (2022).

Every operation here is linear in the input field: a spectral convolution multiplies each input
channel's spectrum by a learned complex filter and sums over input channels; spectral pooling crops
the centred spectrum (a low-pass and a coarser output sampling). There is no nonlinearity between
layers — unlike the paper's public code, whose spectral pooling hides a ReLU — so the whole stack
collapses into one Fourier-plane filter per (output, input) channel pair, which is what a 4f system
with a Fourier-plane mask can apply (:meth:`SpectralStack.collapse`).

Spectra are *centred* (index N//2 is zero frequency) and use orthonormal FFTs, like
:mod:`labctl.optics`.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from labctl.models.errors import ModelConfigError


def centred_fft2(x: torch.Tensor) -> torch.Tensor:
    return torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(x, dim=(-2, -1)), norm="ortho"), dim=(-2, -1))


def centred_ifft2(x: torch.Tensor) -> torch.Tensor:
    return torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(x, dim=(-2, -1)), norm="ortho"), dim=(-2, -1))


def spectral_pool(spectrum: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """Keep the central ``rows`` × ``cols`` frequencies of a centred spectrum (linear; no ReLU)."""
    r, c = spectrum.shape[-2:]
    if rows > r or cols > c:
        raise ModelConfigError(f"cannot pool a {r}x{c} spectrum up to {rows}x{cols}")
    r0, c0 = r // 2 - rows // 2, c // 2 - cols // 2
    return spectrum[..., r0 : r0 + rows, c0 : c0 + cols]


def kernel_spectrum(kernel: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """Centred transfer function of a small spatial kernel (..., k, k) centred in a rows×cols frame.

    Unnormalised FFT, so that with orthonormal transforms of the signal, multiplying by it is the
    (circular) convolution with ``kernel``.
    """
    k = kernel.shape[-1]
    frame = kernel.new_zeros(*kernel.shape[:-2], rows, cols)
    r0, c0 = rows // 2 - k // 2, cols // 2 - k // 2
    frame[..., r0 : r0 + k, c0 : c0 + k] = kernel
    return torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(frame, dim=(-2, -1))), dim=(-2, -1))


class SpectralConv(nn.Module):
    """``Y[o](u) = Σ_i W[o, i](u) · X[i](u)`` on centred spectra of shape (rows, cols).

    ``W`` is a free complex filter per frequency, stored as real and imaginary parts (state dicts
    stay real, so checkpoints load with ``weights_only=True`` anywhere). It starts as the transfer
    function of a random ``init_kernel`` × ``init_kernel`` spatial kernel (He-style scale), so a
    fresh layer behaves like a small convolution rather than white noise.
    """

    def __init__(self, in_channels: int, out_channels: int, rows: int, cols: int, init_kernel: int = 5) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        kernel = torch.randn(out_channels, in_channels, init_kernel, init_kernel) / math.sqrt(in_channels * init_kernel**2)
        w = kernel_spectrum(kernel, rows, cols)
        self.weight_real = nn.Parameter(w.real.contiguous())
        self.weight_imag = nn.Parameter(w.imag.contiguous())

    @property
    def filters(self) -> torch.Tensor:
        """Complex filters (out, in, rows, cols)."""
        return torch.complex(self.weight_real, self.weight_imag)

    def forward(self, spectrum: torch.Tensor) -> torch.Tensor:
        return torch.einsum("oiuv,biuv->bouv", self.filters, spectrum)


class SpectralStack(nn.Module):
    """Spectral convolutions with optional spectral pooling after each, no nonlinearity anywhere.

    ``channels[l]`` output channels for layer ``l``; ``pool[l]`` the factor (1 = none) by which the
    spectrum is cropped after layer ``l``. Input: real images (B, C, size, size). Output: the complex
    field (B, channels[-1], out, out) that a camera would see before detection.
    """

    def __init__(self, in_channels: int, size: int, channels: list[int], pool: list[int], init_kernel: int = 5) -> None:
        super().__init__()
        if len(channels) != len(pool) or not channels:
            raise ModelConfigError(f"channels {channels} and pool {pool} must be non-empty and of equal length")
        self.in_channels, self.size = in_channels, size
        self.pool = list(pool)
        layers, sizes, n, c_in = [], [], size, in_channels
        for c_out, p in zip(channels, pool):
            if p < 1 or n // p < 1:
                raise ModelConfigError(f"spectral pool factor {p} does not fit a {n}-pixel spectrum")
            layers.append(SpectralConv(c_in, c_out, n, n, init_kernel))
            n //= p
            sizes.append(n)
            c_in = c_out
        self.layers = nn.ModuleList(layers)
        self.sizes = sizes

    @property
    def out_channels(self) -> int:
        return self.layers[-1].out_channels

    @property
    def out_size(self) -> int:
        return self.sizes[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Complex output field (B, out_channels, out_size, out_size); equal to :meth:`forward_layers`.

        Without pooling, the stack is applied as its collapsed bank in one pass. The circular
        convolution commutes with the centring shifts, so only the (small) bank is shifted, never
        the batch: several times faster than the layer-by-layer path on a CPU.
        """
        if any(p != 1 for p in self.pool):
            return self.forward_layers(x)
        bank = torch.fft.ifftshift(self.collapse(), dim=(-2, -1))
        spectrum = torch.fft.fft2(x.to(torch.float32), norm="ortho")
        if bank.shape[1] == 1:
            out = bank[None, :, 0] * spectrum
        else:
            out = torch.einsum("oiuv,biuv->bouv", bank, spectrum)
        return torch.fft.ifft2(out, norm="ortho")

    def forward_layers(self, x: torch.Tensor) -> torch.Tensor:
        """The stack as defined: centred spectrum, each layer's filters, spectral pooling, inverse FFT."""
        spectrum = centred_fft2(x.to(torch.float32))
        for layer, n in zip(self.layers, self.sizes):
            spectrum = spectral_pool(layer(spectrum), n, n)
        return centred_ifft2(spectrum)

    def collapse(self) -> torch.Tensor:
        """The effective Fourier-plane filter bank ``H[o, i]`` (out, in, out_size, out_size), complex.

        ``H[o, i](u) = Σ over channel paths of the product of the layers' filters at u``, evaluated on
        the frequencies that survive every spectral pooling. :func:`apply_filter_bank` with it gives
        the same field as :meth:`forward`.
        """
        n = self.size
        bank = torch.eye(self.in_channels, dtype=torch.complex64)[:, :, None, None].expand(-1, -1, n, n)
        for layer, m in zip(self.layers, self.sizes):
            bank = spectral_pool(torch.einsum("oiuv,ijuv->ojuv", layer.filters, bank), m, m)
        return bank


def apply_filter_bank(x: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
    """Field of a one-layer 4f system with Fourier-plane filters ``bank`` (out, in, n, n) on images x."""
    spectrum = spectral_pool(centred_fft2(x.to(torch.float32)), *bank.shape[-2:])
    return centred_ifft2(torch.einsum("oiuv,biuv->bouv", bank, spectrum))
