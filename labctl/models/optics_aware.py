"""The optics-aware student: its front end *is* the bench's forward model.

The image is shown as amplitude on the input modulator, one phase-only mask on the Fourier SLM (at
the SLM's pixel count, quantised to its bit depth with a straight-through gradient) filters it, and
the camera records the square-law intensity of the output plane (:class:`labctl.optics.twin.FourFTwin`,
the same 4f physics the simulated bench uses). Each output channel is a copy of the filtered image
steered to its own tile on the camera; :mod:`labctl.optics.readout` samples the tiles at the images
of the input pixels (ideal affine here, the calibrated registration on the bench), and the electronic
back end reads those samples. What is distilled is exactly what the optics can compute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import nn

from labctl.models.backend import ClassifierBackEnd, SegmentationBackEnd, check_backend_conv
from labctl.models.errors import ModelConfigError
from labctl.optics.geometry import CameraPose, input_to_camera_affine
from labctl.optics.layout import OpticalLayout, modulator_patch
from labctl.optics.errors import OpticsModelError
from labctl.optics.phase_parameter import RESTORE_MARGIN, START_MARGIN, MaskPhase, phase_from_logits
from labctl.optics.quantise import round_to_levels
from labctl.optics.readout import channel_points
from labctl.optics.twin import FourFTwin


@dataclass(frozen=True)
class OpticsAwareConfig:
    """``layout``: :meth:`OpticalLayout.to_dict` of the bench it was designed for; ``oversample``:
    readout sub-samples per image pixel side; back-end settings as for the SCLC student."""

    task: Literal["classification", "segmentation"]
    in_channels: int
    size: int
    num_classes: int
    layout: dict = field(default_factory=dict)
    oversample: int = 2
    backend_pool: int = 7
    hidden: int = 128
    linear_backend: bool = False
    backend_conv: int = 0
    backend_conv_layers: int = 1
    kind: Literal["optics_aware"] = "optics_aware"

    def __post_init__(self) -> None:
        check_backend_conv(self.task, self.backend_conv, self.backend_conv_layers)

    @property
    def channels(self) -> int:
        """Output channels in all (a layout stored before multiplexing has one per tile)."""
        return int(self.layout.get("channels") or len(self.layout["tiles"]))


def ideal_affine(layout: OpticalLayout) -> np.ndarray:
    """Input-modulator pixel (col, row) → camera pixel (col, row) for a perfectly aligned camera."""
    return input_to_camera_affine(
        layout.geometry, layout.input_rows, layout.input_cols, layout.input_pitch_m,
        layout.camera_rows, layout.camera_cols, layout.camera_pitch_m, CameraPose(),
    )


def quantise_phase(phase: torch.Tensor, bit_depth: int) -> torch.Tensor:
    """Wrap to [0, 2π) and round to 2**bit_depth uniform levels (what a linear, uncalibrated phase
    table shows; a calibrated panel's levels: :func:`labctl.optics.quantise.round_to_levels`); the
    gradient passes straight through the rounding (straight-through estimator)."""
    wrapped = torch.remainder(phase, 2 * math.pi)
    levels = 2**bit_depth
    step = 2 * math.pi / levels
    rounded = torch.remainder(torch.round(wrapped / step), levels) * step
    return wrapped + (rounded - wrapped).detach()


def initial_phase(layout: OpticalLayout, generator: torch.Generator, jitter_rad: float = 0.3, tiles: int | None = None) -> torch.Tensor:
    """Phase of the sum of the channel ramps (each steering a copy of the image to its tile), with
    random per-channel offsets and a little per-pixel jitter so that the channels start different.
    ``tiles``: steer to the first ``tiles`` tiles only (a multiplexed layout's last, partial group)."""
    geo = layout.geometry
    y, x = (torch.from_numpy(a) for a in geo.fourier_coords_m())
    field_sum = torch.zeros(geo.rows, geo.cols, dtype=torch.complex128)
    for sy, sx in layout.tile_shifts_m()[:tiles]:
        ky, kx = geo.ramp_frequency_for_shift(sy, sx)
        offset = float(torch.rand((), generator=generator, dtype=torch.float64)) * 2 * math.pi
        field_sum = field_sum + torch.exp(1j * (2 * math.pi * (ky * y + kx * x) + offset))
    jitter = torch.randn(geo.rows, geo.cols, generator=generator, dtype=torch.float64) * jitter_rad
    return torch.remainder(torch.angle(field_sum) + jitter, 2 * math.pi).float()


class OpticsAwareStudent(nn.Module):
    def __init__(self, config: OpticsAwareConfig, seed: int = 0) -> None:
        super().__init__()
        if config.in_channels != 1:
            raise ModelConfigError(f"the optics-aware student shows one field on the input modulator; the data has {config.in_channels} channels")
        self.config = config
        self.layout = OpticalLayout.from_dict(config.layout)
        if self.layout.image_size != config.size:
            raise ModelConfigError(f"layout is for {self.layout.image_size}-px images; config says {config.size}")
        self.twin = FourFTwin(self.layout, image_only=True)
        generator = torch.Generator().manual_seed(seed)
        groups = [initial_phase(self.layout, generator, tiles=len(self.layout.group_channels(g))) for g in range(self.layout.channel_groups)]
        # one mask (rows, cols), or one per channel group (groups, rows, cols) when the channels are
        # multiplexed; bounded where the layout's panel fringes (labctl.optics.phase_parameter)
        self.phase = MaskPhase.for_layout(groups[0] if len(groups) == 1 else torch.stack(groups), self.layout)
        self.register_buffer("phase_levels", self.layout.quantisation_levels().float(), persistent=False)
        self.register_buffer("points", channel_points(self.layout, ideal_affine(self.layout), config.oversample), persistent=False)
        c = config.channels
        if config.task == "classification":
            self.back: nn.Module = ClassifierBackEnd(
                c, config.num_classes, min(config.backend_pool, config.size), config.hidden, config.linear_backend, config.backend_conv,
                config.backend_conv_layers,
            )
        else:
            self.back = SegmentationBackEnd(c, config.num_classes, config.hidden, config.size, config.linear_backend)

    def phase_mask(self) -> torch.Tensor:
        """(fourier_rows, fourier_cols) radians in [0, 2π), rounded to the phases the SLM shows through
        its phase table (the layout's ``phase_levels``); one per channel group, (groups, rows, cols),
        when the channels are multiplexed."""
        return round_to_levels(self.phase(), self.phase_levels)

    def set_phase(self, phase: torch.Tensor, margin: float = START_MARGIN) -> None:
        """Show ``phase`` (radians, the shape of :meth:`phase_mask`), kept ``margin`` (a fraction of
        the bound's span, :mod:`labctl.optics.phase_parameter`) inside its ends where the phase is
        bounded: a start for training by default."""
        try:
            self.phase.set(phase, margin)
        except OpticsModelError as exc:
            raise ModelConfigError(str(exc)) from None

    def frames(self, x: torch.Tensor) -> torch.Tensor:
        """Simulated camera frames (B, cam_rows, cam_cols), relative intensity, for images (B, 1, n, n);
        (B, groups, cam_rows, cam_cols) when the channels are multiplexed."""
        origin = (self.layout.image_row, self.layout.image_col)
        patch, masks = modulator_patch(x, self.layout), self.phase_mask()
        if masks.ndim == 2:
            return self.twin(patch, masks, origin)
        return torch.stack([self.twin(patch, mask, origin) for mask in masks], dim=1)

    def detected(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, n, n) intensities read from the channel tiles of the simulated frame(s): each channel
        group's from its own frame (:meth:`labctl.optics.twin.FourFTwin.read_groups`)."""
        masks = self.phase_mask()
        masks = [masks] if masks.ndim == 2 else list(masks)
        points = [self.points[: len(self.layout.group_channels(g))] for g in range(len(masks))]
        origin = (self.layout.image_row, self.layout.image_col)
        readouts = self.twin.read_groups(modulator_patch(x, self.layout), masks, points, self.config.oversample, origin)
        return torch.cat(readouts, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.back(self.detected(x))


def state_from_older(state: dict[str, torch.Tensor], version: int, phase: MaskPhase) -> dict[str, torch.Tensor]:
    """The weights of an older checkpoint format as this student holds them in ``phase``
    (``phase.value``, :class:`labctl.optics.phase_parameter.MaskPhase`): version 1 stored the phase
    in radians as ``phase``, version 2 as logits over the whole circle (``phase_logits``). The phase
    is kept to within :data:`labctl.optics.phase_parameter.RESTORE_MARGIN` where it is now bounded."""
    old = {1: "phase", 2: "phase_logits"}.get(version)
    if old not in state:
        return state
    radians = state[old] if version == 1 else phase_from_logits(state[old])
    upgraded = {k: v for k, v in state.items() if k != old}
    upgraded["phase.value"] = MaskPhase.stored(radians, phase.bounded, RESTORE_MARGIN, phase.span)
    return upgraded
