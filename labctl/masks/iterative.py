"""Phase-only encoding by an iterative Fourier-transform algorithm with a free region (data-free).

A phase-only Fourier mask passes all the light; what it cannot shape has to land somewhere in the
output plane. Double-phase encoding (:mod:`labctl.masks.encoding`) puts that light in a
checkerboard copy half an output window away, which on a camera spanning the window falls on other
tiles. But the camera reads only the tiles: the field must equal the filters' impulse response only
where it maps some part of the input image onto some tile, and is free everywhere else. Packing the
tiles in the camera's centre (``OpticalLayout.tiled(..., packed=True)``) leaves the window's rim
free, and the Gerchberg–Saxton iteration with a free region (Wyrowski & Bryngdahl, "Iterative
Fourier-transform algorithm applied to computer holography", JOSA A 5, 1988) finds a phase whose field matches the wanted one, up to one
complex scale, inside the :func:`output_region` and sends the rest to the rim.

Each iteration: field = FT(e^{iφ}) (the second lens, :func:`impulse_response`); inside the region
replace it by the wanted field (its best complex scale); φ = arg FT⁻¹(field). Sampled on the SLM's own pixel grid, so the output plane is one
window of ``fourier_rows × fourier_cols`` samples ``λ·f2 / p_F`` wide (the SLM's pixel aperture
only tapers it, which the runner's per-channel gain absorbs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from drivers.errors import LabctlError
from labctl.optics.layout import OpticalLayout
from labctl.optics.propagation import fringing_blur


class IterativeEncodingError(LabctlError, ValueError):
    """The iterative encoding cannot run (wrong mask shape, NaN, no region, bad settings)."""


@dataclass(frozen=True)
class IterativeEncoding:
    iterations: int = 50


def impulse_response(mask: np.ndarray) -> np.ndarray:
    """The output field (rows, cols) of a point at the input's centre through the centred Fourier
    ``mask``: index (rows//2, cols//2) is the optical axis, one index is ``λ·f2 / (p_F·rows)``, and
    a ramp that :mod:`labctl.masks.filter_bank` lays for an output shift lands there (the second
    lens's forward transform, as in :func:`labctl.optics.propagation.output_intensity`)."""
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(mask), norm="ortho"))


def _mask_of(field: np.ndarray) -> np.ndarray:
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(field), norm="ortho"))


def output_region(layout: OpticalLayout, reach_image_px: int, channels: int | None = None) -> np.ndarray:
    """Where the impulse response matters (rows, cols; bool, on the :func:`impulse_response` grid):
    for each of the first ``channels`` tiles (default: all), every offset that maps a pixel of the
    input image onto a pixel of the tile's footprint, i.e. the tile's shift ± one footprint, widened
    by the kernel's ``reach_image_px`` and one image pixel for the SLM aperture's blur."""
    tiles = len(layout.tiles) if channels is None else channels
    if not 1 <= tiles <= len(layout.tiles):
        raise IterativeEncodingError(f"{tiles} channel(s) for a layout of {len(layout.tiles)} tiles per frame")
    rows, cols = layout.fourier_rows, layout.fourier_cols
    spacing_y, spacing_x = layout.geometry.output_spacing_m
    image_px_m = layout.footprint_px * layout.camera_pitch_m / layout.image_size
    half_m = layout.footprint_px * layout.camera_pitch_m + (reach_image_px + 1) * image_px_m
    y = (np.arange(rows) - rows // 2)[:, None] * spacing_y
    x = (np.arange(cols) - cols // 2)[None, :] * spacing_x
    region = np.zeros((rows, cols), dtype=bool)
    for shift_y, shift_x in layout.tile_shifts_m()[:tiles]:
        region |= (np.abs(y - shift_y) <= half_m) & (np.abs(x - shift_x) <= half_m)
    return region


def group_regions(layout: OpticalLayout, kernel_extent: int = 0) -> list[np.ndarray]:
    """:func:`output_region` of each channel group's mask, for kernels ``kernel_extent`` image px wide
    (0: free filters, which reach a whole image side)."""
    reach = kernel_extent // 2 if kernel_extent else layout.image_size
    return [output_region(layout, reach, len(layout.group_channels(g))) for g in range(layout.channel_groups)]


def panel_region_error(phase: np.ndarray, mask: np.ndarray, region: np.ndarray, fringing_sigma_px: float = 0.0,
                       fill_factor: float = 1.0) -> float:
    """Relative error, inside ``region``, of the impulse response a panel gives for the addressed
    ``phase`` against ``mask``'s (up to one complex scale): the panel transmits (1 − F) + F·e^{iφ'},
    φ' the phase modulo 2π smoothed by the fringing field (the model of
    :mod:`labctl.optics.propagation`, without the pixel apertures' envelope, which the runner's
    per-channel gain absorbs). Data-free: what a phase-only encoding will be worth on a calibrated
    panel. 0 and 1: the ideal panel the encodings assume."""
    shown = fringing_blur(torch.from_numpy(np.mod(phase, 2 * np.pi)), fringing_sigma_px).numpy()
    field = impulse_response((1 - fill_factor) + fill_factor * np.exp(1j * shown))[region]
    wanted = impulse_response(mask)[region]
    scale = np.vdot(wanted, field) / np.vdot(wanted, wanted).real
    return float(np.linalg.norm(field - scale * wanted) / (np.linalg.norm(scale * wanted) + 1e-300))


def iterative_phase(
    mask: np.ndarray, region: np.ndarray, start_phase: np.ndarray, config: IterativeEncoding = IterativeEncoding()
) -> tuple[np.ndarray, dict[str, float]]:
    """Phase in [0, 2π) whose impulse response matches ``mask``'s inside ``region`` (up to one
    complex scale), from ``start_phase``; and a summary: the relative error inside the region
    before and after, and the share of the light the wanted field there carries."""
    mask = np.asarray(mask)
    if mask.ndim != 2 or region.shape != mask.shape or np.shape(start_phase) != mask.shape:
        raise IterativeEncodingError(
            f"mask {mask.shape}, region {region.shape} and start phase {np.shape(start_phase)} must be one 2-D shape"
        )
    if not (np.all(np.isfinite(mask)) and np.all(np.isfinite(start_phase))):
        raise IterativeEncodingError("the mask or the start phase holds NaN or inf")
    if config.iterations < 0:
        raise IterativeEncodingError(f"iterations must be >= 0; got {config.iterations}")
    wanted = impulse_response(mask)[region]
    norm = float(np.vdot(wanted, wanted).real)
    if not region.any() or norm == 0:
        raise IterativeEncodingError("the mask's impulse response is zero inside the region (or the region is empty)")

    def fit(phase: np.ndarray) -> tuple[np.ndarray, complex, float]:
        field = impulse_response(np.exp(1j * phase))
        scale = np.vdot(wanted, field[region]) / norm
        error = float(np.linalg.norm(field[region] - scale * wanted) / (np.linalg.norm(scale * wanted) + 1e-300))
        return field, scale, error

    phase = np.asarray(start_phase, dtype=np.float64)
    field, scale, before = fit(phase)
    after = before
    for _ in range(config.iterations):
        field[region] = scale * wanted
        phase = np.angle(_mask_of(field))
        field, scale, after = fit(phase)
    light = float(abs(scale) ** 2 * norm / np.vdot(field, field).real)
    return np.mod(phase, 2 * np.pi), {"region_error_before": before, "region_error_after": after,
                                      "region_light": light, "region_share": float(region.mean())}
