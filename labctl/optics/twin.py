"""The bench's differentiable digital twin: input amplitudes and Fourier phase → camera intensity.

Built from an :class:`~labctl.models.optical_layout.OpticalLayout` (design geometry) and the same
physics as the simulator (:mod:`labctl.optics.propagation`), with the bench's free parameters as
torch parameters: camera pose (shift, rotation, scale), defocus, a phase-scale error (the phase table
over- or under-shooting), SLM fringing and fill factor, and an overall intensity gain. By default the
twin is the ideal design; in-situ training refines the free parameters against captured frames
(``requires_grad`` on the ones to fit) and sends gradients through it to the mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from labctl.optics.layout import OpticalLayout
from labctl.optics.errors import OpticsModelError
from labctl.optics.geometry import CameraPose, InputSampling
from labctl.optics.propagation import defocus_phase, fringing_blur, output_intensity, pixel_envelope, pixelated_transmission

#: Free parameters in the order :meth:`FourFTwin.fit_parameters` accepts them.
FREE_PARAMETERS = ("shift", "rotation", "log_scale", "defocus_um", "phase_scale", "log_gain")


@dataclass(frozen=True)
class TwinAssumptions:
    """What the twin assumes about the parts of the bench no calibration measures directly."""

    crosstalk_sigma_px: float = 0.0
    fill_factor: float = 1.0


class FourFTwin(nn.Module):
    def __init__(self, layout: OpticalLayout, pose: CameraPose = CameraPose(), assumptions: TwinAssumptions = TwinAssumptions()) -> None:
        super().__init__()
        self.layout = layout
        self.assumptions = assumptions
        geo = layout.geometry
        self._sampling = InputSampling.build(geo, layout.input_rows, layout.input_cols, layout.input_pitch_m)
        self.register_buffer("_unit_defocus", defocus_phase(geo, 1e-6))  # phase per µm of defocus
        self.register_buffer("_envelope", pixel_envelope(geo, float(np.sqrt(assumptions.fill_factor))))
        dy, dx = geo.output_spacing_m
        self._out_spacing = (dy, dx)
        self.shift = nn.Parameter(torch.tensor([pose.shift_x_m, pose.shift_y_m], dtype=torch.float64) * 1e6, requires_grad=False)
        self.rotation = nn.Parameter(torch.tensor(pose.rotation_rad, dtype=torch.float64), requires_grad=False)
        self.log_scale = nn.Parameter(torch.tensor(np.log(pose.scale), dtype=torch.float64), requires_grad=False)
        self.defocus_um = nn.Parameter(torch.tensor(pose.defocus_m * 1e6, dtype=torch.float64), requires_grad=False)
        self.phase_scale = nn.Parameter(torch.tensor(1.0), requires_grad=False)
        self.log_gain = nn.Parameter(torch.tensor(0.0), requires_grad=False)

    def _apply(self, fn, recurse: bool = True):  # noqa: ANN001, ANN202 - nn.Module's own signature
        """Move the input sampling (plain tensors, not state) with the module (``.to(device)``)."""
        self._sampling = InputSampling(fn(self._sampling.ry), fn(self._sampling.rx))
        return super()._apply(fn, recurse)

    # -- parameters -----------------------------------------------------------------------------------
    def fit_parameters(self, names: tuple[str, ...]) -> list[nn.Parameter]:
        """Mark ``names`` (from FREE_PARAMETERS) as fitted; returns them for an optimiser."""
        unknown = set(names) - set(FREE_PARAMETERS)
        if unknown:
            raise OpticsModelError(f"unknown twin parameter(s) {sorted(unknown)}; free parameters: {FREE_PARAMETERS}")
        chosen = []
        for name in FREE_PARAMETERS:
            p = getattr(self, name)
            p.requires_grad_(name in names)
            if name in names:
                chosen.append(p)
        return chosen

    @property
    def pose(self) -> CameraPose:
        sx, sy = (self.shift.detach() * 1e-6).tolist()
        return CameraPose(sx, sy, float(self.rotation), float(torch.exp(self.log_scale)), float(self.defocus_um) * 1e-6)

    def describe(self) -> dict[str, float]:
        p = self.pose
        return {
            "shift_x_um": p.shift_x_m * 1e6, "shift_y_um": p.shift_y_m * 1e6, "rotation_mrad": p.rotation_rad * 1e3,
            "scale": p.scale, "defocus_um": p.defocus_m * 1e6, "phase_scale": float(self.phase_scale),
            "gain": float(torch.exp(self.log_gain)),
        }

    # -- physics --------------------------------------------------------------------------------------
    def transmission(self, phase: torch.Tensor) -> torch.Tensor:
        """Complex Fourier-plane transmission for an addressed phase pattern (R, C) in radians."""
        phase = fringing_blur(phase.float() * self.phase_scale, self.assumptions.crosstalk_sigma_px)
        phase = phase + self._unit_defocus * self.defocus_um.float()
        return pixelated_transmission(phase, self.assumptions.fill_factor)

    def camera_grid(self) -> torch.Tensor:
        """grid_sample grid (1, rows, cols, 2) of camera pixel centres in the output plane (differentiable)."""
        lay = self.layout
        geo = lay.geometry
        device = self.shift.device
        v = (torch.arange(lay.camera_rows, dtype=torch.float64, device=device) - (lay.camera_rows - 1) / 2) * lay.camera_pitch_m
        u = (torch.arange(lay.camera_cols, dtype=torch.float64, device=device) - (lay.camera_cols - 1) / 2) * lay.camera_pitch_m
        vv, uu = torch.meshgrid(v, u, indexing="ij")
        c, s = torch.cos(self.rotation), torch.sin(self.rotation)
        k = torch.exp(self.log_scale)
        x = k * (c * uu - s * vv) + self.shift[0] * 1e-6
        y = k * (s * uu + c * vv) + self.shift[1] * 1e-6
        dy, dx = self._out_spacing
        gx = 2 * (x / dx + geo.cols // 2) / (geo.cols - 1) - 1
        gy = 2 * (y / dy + geo.rows // 2) / (geo.rows - 1) - 1
        return torch.stack([gx, gy], dim=-1)[None].float()

    def forward(self, amplitude: torch.Tensor, phase: torch.Tensor, origin: tuple[int, int] | None = None) -> torch.Tensor:
        """Camera intensity (B, cam_rows, cam_cols), relative units.

        ``amplitude``: (B, rows, cols) over the whole input modulator, or, with ``origin`` = (row, col),
        a patch of it whose top-left pixel sits there (the rest of the modulator dark). A small image
        on a large modulator then costs a fraction of the input sampling.
        """
        amplitude = amplitude.float()
        if origin is None:
            field = self._sampling.apply(amplitude)
        else:
            r0, c0 = origin
            h, w = amplitude.shape[-2:]
            if r0 < 0 or c0 < 0 or r0 + h > self.layout.input_rows or c0 + w > self.layout.input_cols:
                raise OpticsModelError(f"a {h}x{w} patch at {origin} leaves the {self.layout.input_rows}x{self.layout.input_cols} modulator")
            field = self._sampling.ry[:, r0 : r0 + h] @ amplitude @ self._sampling.rx[:, c0 : c0 + w].T
        intensity = output_intensity(field.to(torch.complex64), self.transmission(phase), self._envelope)
        grid = self.camera_grid().expand(intensity.shape[0], -1, -1, -1)
        frame = F.grid_sample(intensity[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=True)[:, 0]
        return frame * torch.exp(self.log_gain)
