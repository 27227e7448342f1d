"""A collapsed SCLC filter bank as one complex Fourier-plane mask with the channels side by side.

The student's filter ``H[c]`` is defined on the image's own frequency grid (cycles per image pixel).
On the bench the image is shown ``image_scale`` modulator pixels per image pixel, so SLM pixel ``m``
(from the optical axis) sees input frequency ``ν = m·p_F·s·p_in / (λ·f1)`` cycles per image pixel.
The mask there is the filter's discrete-time Fourier transform, ``T(ν) = Σ_k h[k]·e^{−2πiνk}``,
with ``h`` the filter's spatial kernel. That is periodic in ν, which is exactly right for a
nearest-upsampled image: the optical output then equals the digital convolution, upsampled.
Each channel is moved to its tile on the camera by a linear phase ramp (shift = λ·f2·k), and the
channels are summed into one mask.
"""

from __future__ import annotations

import numpy as np
import torch

from drivers.errors import LabctlError
from labctl.optics.layout import OpticalLayout


class FilterBankError(LabctlError, ValueError):
    """The filter bank does not fit the optical layout (channels, input channels, size)."""


def spatial_kernels(bank: torch.Tensor) -> np.ndarray:
    """Centred spatial kernels (C, n, n) of a centred filter bank (C, n, n): index n//2 is offset 0."""
    h = torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(bank, dim=(-2, -1))), dim=(-2, -1))
    return h.detach().cpu().numpy().astype(np.complex128)


def _dtft_matrix(nu: np.ndarray, n: int) -> np.ndarray:
    """E[m, k] = exp(−2πi·ν_m·(k − n//2)): the DTFT at frequencies ``nu`` of a centred length-n kernel."""
    offsets = np.arange(n) - n // 2
    return np.exp(-2j * np.pi * nu[:, None] * offsets[None, :])


def fourier_mask(bank: torch.Tensor, layout: OpticalLayout) -> np.ndarray:
    """Complex Fourier-plane mask (fourier_rows, fourier_cols) applying ``bank`` (C, 1, n, n), C at
    most the tiles of one frame.

    Channel ``c`` of the output appears on ``layout.tiles[c]``; tiles past C stay dark. Amplitudes are the filters' own
    (not normalised); :func:`labctl.masks.encoding.double_phase` makes it phase only.
    """
    if bank.ndim != 4 or bank.shape[1] != 1:
        raise FilterBankError(
            f"a 4f system has one input field, so the filter bank must be (channels, 1, n, n); got {tuple(bank.shape)}"
        )
    channels, _, n, n2 = bank.shape
    if n != n2 or n != layout.image_size:
        raise FilterBankError(f"filters of {n}x{n2} do not match the layout's {layout.image_size}-px image")
    if channels > len(layout.tiles):
        raise FilterBankError(f"{channels} filter channels but the layout has {len(layout.tiles)} tiles per frame")
    geo = layout.geometry
    y_f, x_f = geo.fourier_coords_m()
    per_image_px = layout.image_scale * layout.input_pitch_m / (layout.wavelength_m * layout.f1_m)
    e_rows = _dtft_matrix(y_f[:, 0] * per_image_px, n)
    e_cols = _dtft_matrix(x_f[0, :] * per_image_px, n)
    kernels = spatial_kernels(bank[:, 0])
    mask = np.zeros(geo.shape, dtype=np.complex128)
    for kernel, (shift_y, shift_x) in zip(kernels, layout.tile_shifts_m()):
        ky, kx = geo.ramp_frequency_for_shift(shift_y, shift_x)
        ramp = np.exp(2j * np.pi * (ky * y_f + kx * x_f))
        mask += (e_rows @ kernel @ e_cols.T) * ramp
    return mask


def fourier_masks(bank: torch.Tensor, layout: OpticalLayout) -> list[np.ndarray]:
    """One complex mask per channel group of ``layout`` (a multiplexed layout shows its channels as
    several masks, each on its own camera frame)."""
    if bank.shape[0] != layout.channels:
        raise FilterBankError(f"{bank.shape[0]} filter channels but the layout is for {layout.channels}")
    return [fourier_mask(bank[list(layout.group_channels(g))], layout) for g in range(layout.channel_groups)]
