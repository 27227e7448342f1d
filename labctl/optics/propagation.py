"""Fields through the 4f system: Fourier-plane transmission of a pixelated phase SLM, and the
propagation itself (one FFT pair per frame, batched, differentiable)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from labctl.optics.geometry import FourFGeometry


def _shift(x: torch.Tensor, inverse: bool) -> torch.Tensor:
    fn = torch.fft.ifftshift if inverse else torch.fft.fftshift
    return fn(x, dim=(-2, -1))


def propagate(input_field: torch.Tensor, transmission: torch.Tensor) -> torch.Tensor:
    """Output-plane field of a 4f system.

    ``input_field``: (..., R, C) real or complex, centred, in √W per sample. ``transmission``:
    (R, C) or broadcastable complex Fourier-plane mask, centred. Two forward transforms (each lens
    is a forward Fourier transform), so the image is inverted; ``ortho`` scaling conserves power
    through a lossless mask. One FFT pair per frame.
    """
    return _shift(_propagate_uncentred(input_field, transmission), inverse=False)


def _propagate_uncentred(input_field: torch.Tensor, transmission: torch.Tensor) -> torch.Tensor:
    # The centring shifts between the two transforms cancel; only the mask is shifted instead.
    spectrum = torch.fft.fft2(_shift(input_field, inverse=True), norm="ortho")
    return torch.fft.fft2(spectrum * _shift(transmission, inverse=True), norm="ortho")


def output_intensity(
    input_field: torch.Tensor, transmission: torch.Tensor, envelope: torch.Tensor | None = None
) -> torch.Tensor:
    """|output field|² (power per sample), centred; ``envelope`` multiplies the output field.

    Same physics as :func:`propagate`, with the centring shift done once on the real intensity.
    """
    out = _propagate_uncentred(input_field, transmission)
    if envelope is not None:
        out = out * _shift(envelope, inverse=True)
    ri = torch.view_as_real(out)
    return _shift(ri[..., 0].square() + ri[..., 1].square(), inverse=False)


def fringing_blur(phase: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Fringing-field crosstalk: the LC layer's phase is the addressed phase smoothed over neighbours.

    Gaussian of ``sigma_px`` SLM pixels, applied to the unwrapped phase (the LC sees voltages, not
    wrapped angles), reflect-padded at the panel edges. ``phase``: (..., R, C) real.
    """
    if sigma_px <= 0:
        return phase
    radius = max(1, int(np.ceil(3 * sigma_px)))
    t = torch.arange(-radius, radius + 1, dtype=phase.dtype, device=phase.device)
    k = torch.exp(-0.5 * (t / sigma_px) ** 2)
    k = k / k.sum()
    lead = phase.shape[:-2]
    x = phase.reshape(-1, 1, *phase.shape[-2:])
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1))
    x = F.conv2d(x, k.view(1, 1, -1, 1))
    return x.reshape(*lead, *phase.shape[-2:])


def pixelated_transmission(phase: torch.Tensor, fill_factor: float) -> torch.Tensor:
    """Complex transmission of a phase SLM whose pixels fill ``fill_factor`` of the area.

    Light on the inter-pixel gaps is not modulated and adds a zero-order leak: t = η·e^{iφ} + (1−η).
    """
    return fill_factor * torch.polar(torch.ones_like(phase), phase) + (1.0 - fill_factor)


def defocus_phase(geometry: FourFGeometry, defocus_m: float) -> torch.Tensor:
    """Fourier-plane phase equivalent to the sensor sitting ``defocus_m`` behind the output plane.

    Paraxial transfer function exp(−iπλΔz·ν²) with ν = x_F/(λ·f2): φ = −π·Δz·x_F² / (λ·f2²).
    """
    y, x = geometry.fourier_coords_m()
    phi = -np.pi * defocus_m * (x**2 + y**2) / (geometry.wavelength_m * geometry.f2_m**2)
    return torch.from_numpy(phi).float()


def pixel_envelope(geometry: FourFGeometry, linear_fill: float) -> torch.Tensor:
    """Output-plane amplitude envelope sinc(a·x/(λ·f2)) of Fourier-SLM pixels of width a = fill·p_F.

    It dims the edges of the window (where neighbouring diffraction orders meet).
    """
    y, x = geometry.output_coords_m()
    a = linear_fill * geometry.fourier_pitch_m
    scale = geometry.wavelength_m * geometry.f2_m
    return torch.from_numpy(np.sinc(a * y / scale) * np.sinc(a * x / scale)).float()
