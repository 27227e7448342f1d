"""Spectral convolution layers (SCLC front end), after Xiang et al., Appl. Opt. 61:2173 (2022).

Every operation here is linear in the input field: a spectral convolution multiplies each input
channel's spectrum by a learned complex filter and sums over input channels; spectral pooling crops
the centred spectrum (a low-pass and a coarser output sampling). There is no nonlinearity between
layers — unlike the paper's public code, whose spectral pooling hides a ReLU — so the whole stack
collapses into one Fourier-plane filter per (output, input) channel pair, which is what a 4f system
with a Fourier-plane mask can apply (:meth:`SpectralStack.collapse`).

Spectra are *centred* (index N//2 is zero frequency) and use orthonormal FFTs, like
:mod:`labctl.optics`.

**Kernel support.** Free per-frequency filters are spatial kernels as wide as the image, and the
digital stack convolves *circularly* while a 4f system convolves *linearly*: a wide kernel wraps
in silicon and spills out of its tile (into the neighbouring channels' tiles) in light. With
``kernel_support`` K (odd) every layer's filter is projected, in its forward pass, onto kernels
that are zero outside the central K × K pixels (:func:`project_kernel_support`), and the stack
computes the *linear* (zero-padded) convolution of its collapsed kernel, the one the optics
compute, cropped to the image. The collapsed kernel of L such layers spans ``L·(K − 1) + 1``
pixels (:attr:`SpectralStack.kernel_extent`), which sizes the guard band between camera tiles
(:meth:`labctl.optics.layout.OpticalLayout.tiled`).
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


def support_mask(rows: int, cols: int, support: int) -> torch.Tensor:
    """(rows, cols) 0/1 mask of the central ``support`` × ``support`` pixels of a centred kernel
    (offset 0 at index (rows//2, cols//2); offsets −support//2 … support//2)."""
    if support < 1 or support % 2 == 0 or support > min(rows, cols):
        raise ModelConfigError(f"kernel support must be odd and within 1..{min(rows, cols)} px; got {support}")
    mask = torch.zeros(rows, cols)
    h = support // 2
    mask[rows // 2 - h : rows // 2 + h + 1, cols // 2 - h : cols // 2 + h + 1] = 1.0
    return mask


def project_kernel_support(filters: torch.Tensor, support: int) -> torch.Tensor:
    """The centred transfer functions ``filters`` (..., rows, cols) whose spatial kernels are zeroed
    outside the central ``support`` × ``support`` pixels (an orthogonal, idempotent projection;
    differentiable). The kernel of a filter is its centred inverse FFT, as in
    :func:`labctl.masks.filter_bank.spatial_kernels`."""
    rows, cols = filters.shape[-2:]
    kernel = centred_ifft2(filters) * support_mask(rows, cols, support).to(filters.device)
    return centred_fft2(kernel)


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

    ``kernel_support`` K > 0: :attr:`filters` are the stored ones projected onto spatial kernels
    zero outside the central K × K pixels (:func:`project_kernel_support`), so whatever the
    optimiser does to the stored values, the layer only ever applies a K × K kernel.
    """

    def __init__(self, in_channels: int, out_channels: int, rows: int, cols: int, init_kernel: int = 5,
                 kernel_support: int = 0) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_support = kernel_support
        if kernel_support:
            support_mask(rows, cols, kernel_support)  # refuses an even or too large support
            init_kernel = min(init_kernel, kernel_support)
        kernel = torch.randn(out_channels, in_channels, init_kernel, init_kernel) / math.sqrt(in_channels * init_kernel**2)
        w = kernel_spectrum(kernel, rows, cols)
        self.weight_real = nn.Parameter(w.real.contiguous())
        self.weight_imag = nn.Parameter(w.imag.contiguous())

    @property
    def filters(self) -> torch.Tensor:
        """Complex filters (out, in, rows, cols); projected onto the kernel support when one is set."""
        w = torch.complex(self.weight_real, self.weight_imag)
        return project_kernel_support(w, self.kernel_support) if self.kernel_support else w

    def forward(self, spectrum: torch.Tensor) -> torch.Tensor:
        return torch.einsum("oiuv,biuv->bouv", self.filters, spectrum)


class SpectralStack(nn.Module):
    """Spectral convolutions with optional spectral pooling after each, no nonlinearity anywhere.

    ``channels[l]`` output channels for layer ``l``; ``pool[l]`` the factor (1 = none) by which the
    spectrum is cropped after layer ``l``. Input: real images (B, C, size, size). Output: the complex
    field (B, channels[-1], out, out) that a camera would see before detection.

    ``kernel_support`` K > 0 (odd; no spectral pooling): each layer's kernel is limited to K × K
    pixels and the stack is the *linear* convolution of its collapsed kernel
    (:attr:`kernel_extent` pixels wide), zero-padded and cropped to the image — what a 4f system
    computes — instead of the circular one.
    """

    def __init__(self, in_channels: int, size: int, channels: list[int], pool: list[int], init_kernel: int = 5,
                 kernel_support: int = 0) -> None:
        super().__init__()
        if len(channels) != len(pool) or not channels:
            raise ModelConfigError(f"channels {channels} and pool {pool} must be non-empty and of equal length")
        self.in_channels, self.size = in_channels, size
        self.pool = list(pool)
        self.kernel_support = int(kernel_support)
        if self.kernel_support:
            if any(p != 1 for p in pool):
                raise ModelConfigError(f"a kernel support limit needs a stack without spectral pooling; got pool {pool}")
            extent = len(channels) * (self.kernel_support - 1) + 1
            if self.kernel_support % 2 == 0 or extent > size:
                raise ModelConfigError(
                    f"kernel support {self.kernel_support} px over {len(channels)} layer(s) spans {extent} px: it must be odd "
                    f"and the collapsed kernel must fit the {size}-px image"
                )
        layers, sizes, n, c_in = [], [], size, in_channels
        for c_out, p in zip(channels, pool):
            if p < 1 or n // p < 1:
                raise ModelConfigError(f"spectral pool factor {p} does not fit a {n}-pixel spectrum")
            layers.append(SpectralConv(c_in, c_out, n, n, init_kernel, self.kernel_support))
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

    @property
    def kernel_extent(self) -> int:
        """Side, in image pixels, of the collapsed spatial kernel: ``L·(K − 1) + 1`` for L layers of
        kernel support K; the image size when the kernels are free (they span the whole frame)."""
        if not self.kernel_support:
            return self.size
        return len(self.layers) * (self.kernel_support - 1) + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Complex output field (B, out_channels, out_size, out_size); equal to :meth:`forward_layers`.

        Without pooling, the stack is applied as its collapsed bank in one pass. The circular
        convolution commutes with the centring shifts, so only the (small) bank is shifted, never
        the batch: several times faster than the layer-by-layer path on a CPU. With a kernel
        support, the collapsed kernel's linear convolution (:func:`apply_filter_bank` with
        ``support``), which is :meth:`forward_layers` only where no kernel reaches past the border.
        """
        if any(p != 1 for p in self.pool):
            return self.forward_layers(x)
        if self.kernel_support:
            return apply_filter_bank(x, self.collapse(), support=self.kernel_extent)
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


def apply_filter_bank(x: torch.Tensor, bank: torch.Tensor, support: int = 0) -> torch.Tensor:
    """Field of a one-layer 4f system with Fourier-plane filters ``bank`` (out, in, n, n) on images x.

    ``support`` 0: the circular convolution on the n × n frame (the filters as they are).
    ``support`` S > 0 (odd): the *linear* convolution with the central S × S pixels of each filter's
    spatial kernel, the input zero-padded so that nothing wraps, cropped to the n × n image: what a
    4f system with a kernel of that support shows on its camera tile.
    """
    if not support:
        spectrum = spectral_pool(centred_fft2(x.to(torch.float32)), *bank.shape[-2:])
        return centred_ifft2(torch.einsum("oiuv,biuv->bouv", bank, spectrum))
    rows, cols = bank.shape[-2:]
    if x.shape[-2:] != (rows, cols):
        raise ModelConfigError(f"a linear convolution with {rows}x{cols} filters needs {rows}x{cols} images; got {tuple(x.shape[-2:])}")
    support_mask(rows, cols, support)
    h = support // 2
    kernels = torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(bank, dim=(-2, -1))), dim=(-2, -1))
    kernels = kernels[..., rows // 2 - h : rows // 2 + h + 1, cols // 2 - h : cols // 2 + h + 1]
    pr, pc = rows + 2 * h, cols + 2 * h
    padded = kernels.new_zeros(*kernels.shape[:-2], pr, pc)
    padded[..., :support, :support] = kernels
    padded = torch.roll(padded, shifts=(-h, -h), dims=(-2, -1))  # offset 0 at index 0, negative offsets wrap to the end
    spectrum = torch.fft.fft2(x.to(torch.float32), s=(pr, pc))
    out = torch.fft.ifft2(torch.einsum("oiuv,biuv->bouv", torch.fft.fft2(padded), spectrum))
    return out[..., :rows, :cols]
