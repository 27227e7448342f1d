"""The bench's differentiable digital twin: input amplitudes and Fourier phase → camera intensity.

Built from an :class:`~labctl.models.optical_layout.OpticalLayout` (design geometry) and the same
physics as the simulator (:mod:`labctl.optics.propagation`), with the bench's free parameters as
torch parameters: camera pose (shift, rotation, scale), defocus, a phase-scale error (the phase table
over- or under-shooting), SLM fringing and fill factor, and an overall intensity gain. By default the
twin is the design geometry, ideally aligned, seen through the Fourier SLM's fringing and fill factor
as its phase calibration measured them, with the light the input modulator's dark pixels leak as its
input-response calibration measured it (the layout carries both; an ideal panel and no leak where
nothing was measured); in-situ training refines the free parameters against captured frames (``requires_grad``
on the ones to fit) and sends gradients through it to the mask.
"""

from __future__ import annotations

import functools
import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from labctl.optics.errors import OpticsModelError
from labctl.optics.geometry import CameraPose, camera_half_extent_m
from labctl.optics.layout import OpticalLayout
from labctl.optics.propagation import (
    aperture_envelope,
    defocus_phase,
    fringing_blur,
    output_intensity,
    phase_transmission,
    slm_transmission,
)
from labctl.optics.plane_readout import PlaneReadout
from labctl.optics.readout import DEFAULT_OVERSAMPLE, read_channels
from labctl.optics.sampling import InputSpectrum, SimulationGrid

#: bytes of complex field per pass of :meth:`FourFTwin.read_groups` on the CPU (see _images_per_chunk)
CHUNK_BYTES = 8 << 20

#: :class:`PlaneReadout` s a twin keeps (one per channel group and pose; the pose changes only when fitted)
_PLANE_READOUTS_KEPT = 8


def _images_per_chunk(grid_shape: tuple[int, int], amplitude: torch.Tensor) -> int:
    """Images per pass of :meth:`FourFTwin.read_groups`: on the CPU, as many as keep one pass's
    complex field near :data:`CHUNK_BYTES` (its steps are memory-bound; a field that stays in the
    cache between them is read and written far faster); elsewhere the whole batch."""
    if amplitude.device.type != "cpu":
        return max(1, amplitude.shape[0])
    return max(1, CHUNK_BYTES // (grid_shape[0] * grid_shape[1] * 8))


def _read_frames(camera, points: torch.Tensor, oversample: int, intensity: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
    return read_channels(camera(intensity), points, oversample)


def _times(readout: PlaneReadout, gain: torch.Tensor, intensity: torch.Tensor) -> torch.Tensor:
    return readout(intensity) * gain


class UnmodelledLeakWarning(UserWarning):
    """The layout's input leak could not be modelled on this bench (its light is left out)."""


#: Free parameters in the order :meth:`FourFTwin.fit_parameters` accepts them.
FREE_PARAMETERS = ("shift", "rotation", "log_scale", "defocus_um", "phase_scale", "log_gain")


@dataclass(frozen=True)
class TwinAssumptions:
    """What the twin assumes about the Fourier SLM's panel: its fringing width (SLM px) and fill factor
    (:class:`labctl.optics.layout.OpticalLayout` carries the calibrated ones)."""

    crosstalk_sigma_px: float = 0.0
    fill_factor: float = 1.0

    @classmethod
    def of(cls, layout: OpticalLayout) -> TwinAssumptions:
        """What the layout's bench calibration measured (an ideal panel where it measured nothing)."""
        return cls(crosstalk_sigma_px=layout.fringing_sigma_px, fill_factor=layout.fill_factor)


class FourFTwin(nn.Module):
    #: what :meth:`fit_parameters` may fit (a refined twin adds its own)
    free_parameters: tuple[str, ...] = FREE_PARAMETERS

    def __init__(
        self, layout: OpticalLayout, pose: CameraPose = CameraPose(), assumptions: TwinAssumptions | None = None,
        image_only: bool = False,
    ) -> None:
        """``assumptions``: None, the panel the layout's calibration measured (:meth:`TwinAssumptions.of`).
        ``image_only``: light only ever comes from the layout's image patch on the modulator (the
        optics-aware student's case), so the simulation grid need only cover that patch — about
        2.5× fewer samples on the default bench; other light is refused rather than wrapped."""
        super().__init__()
        self.layout = layout
        self.assumptions = assumptions = assumptions or TwinAssumptions.of(layout)
        geo = layout.geometry
        side = layout.image_size * layout.image_scale
        self._lit = (layout.image_row, layout.image_col, side, side) if image_only else None
        r0, c0, h, w = self._lit or (0, 0, layout.input_rows, layout.input_cols)
        p = layout.input_pitch_m
        lit_half = (max(abs(r0 - layout.input_rows / 2), abs(r0 + h - layout.input_rows / 2)) * p,
                    max(abs(c0 - layout.input_cols / 2), abs(c0 + w - layout.input_cols / 2)) * p)
        # Sized for the camera at the starting pose; a refined pose moves it by a few pixels at most.
        cam_half = camera_half_extent_m(layout.camera_rows, layout.camera_cols, layout.camera_pitch_m, pose)
        self.grid = SimulationGrid.covering(geo, lit_half, cam_half)
        self._spectrum = InputSpectrum(self.grid, layout.input_rows, layout.input_cols, layout.input_pitch_m)
        self.register_buffer("_unit_defocus", defocus_phase(self.grid, 1e-6))  # phase per µm of defocus
        self.register_buffer("_envelope", aperture_envelope(self.grid, assumptions.fill_factor))
        self._leak_grid = self._leak_model(layout, pose)
        self._out_spacing = geo.output_spacing_m
        self._plane_readouts: dict[tuple, PlaneReadout] = {}
        self.shift = nn.Parameter(torch.tensor([pose.shift_x_m, pose.shift_y_m], dtype=torch.float64) * 1e6, requires_grad=False)
        self.rotation = nn.Parameter(torch.tensor(pose.rotation_rad, dtype=torch.float64), requires_grad=False)
        self.log_scale = nn.Parameter(torch.tensor(np.log(pose.scale), dtype=torch.float64), requires_grad=False)
        self.defocus_um = nn.Parameter(torch.tensor(pose.defocus_m * 1e6, dtype=torch.float64), requires_grad=False)
        self.phase_scale = nn.Parameter(torch.tensor(1.0), requires_grad=False)
        self.log_gain = nn.Parameter(torch.tensor(0.0), requires_grad=False)

    def _leak_model(self, layout: OpticalLayout, pose: CameraPose) -> SimulationGrid | None:
        """The grid and constants of :meth:`leak_field` where the layout's modulator leaks (None where
        it does not). The leak lights the whole modulator, so its light is propagated on a grid that
        covers it all (the twin's own where it is not ``image_only``) and cropped to the twin's
        window: output samples are the geometry's on every grid, centred on the axis."""
        if layout.input_leak <= 0:
            return None
        try:
            grid = SimulationGrid.for_devices(
                layout.geometry, layout.input_rows, layout.input_cols, layout.input_pitch_m,
                layout.camera_rows, layout.camera_cols, layout.camera_pitch_m, pose,
            )
        except OpticsModelError as exc:
            warnings.warn(f"the input modulator's leak ({layout.input_leak:.3f} of full on) is left out of the twin: "
                          f"a grid over the whole modulator is beyond the model ({exc})", UnmodelledLeakWarning, stacklevel=3)
            return None
        dark = torch.ones(1, layout.input_rows, layout.input_cols)
        spectrum = InputSpectrum(grid, layout.input_rows, layout.input_cols, layout.input_pitch_m).apply(dark)[0]
        self.register_buffer("_leak_spectrum", layout.input_leak * spectrum, persistent=False)
        if grid.shape != self.grid.shape:  # on the twin's own grid the mask's transmission is :meth:`transmission`'s
            self.register_buffer("_leak_envelope", aperture_envelope(grid, self.assumptions.fill_factor), persistent=False)
            self.register_buffer("_leak_unit_defocus", defocus_phase(grid, 1e-6), persistent=False)
        return grid

    def _apply(self, fn, recurse: bool = True):  # noqa: ANN001, ANN202 - nn.Module's own signature
        """Move the input spectrum's matrices (plain tensors, not state) with the module (``.to(device)``)."""
        self._spectrum = self._spectrum.to(fn(self._spectrum.ex_re).device)
        return super()._apply(fn, recurse)

    # -- parameters -----------------------------------------------------------------------------------
    def fit_parameters(self, names: tuple[str, ...]) -> list[nn.Parameter]:
        """Mark ``names`` (from the class's ``free_parameters``) as fitted; returns them for an optimiser."""
        unknown = set(names) - set(self.free_parameters)
        if unknown:
            raise OpticsModelError(f"unknown twin parameter(s) {sorted(unknown)}; free parameters: {self.free_parameters}")
        chosen = []
        for name in self.free_parameters:
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
        """Fourier-plane transmission (sub-sampled grid, FFT order) for an addressed phase pattern
        (R, C) in radians, defocus included. The SLM shows the phase modulo 2π (its phase table spans
        one turn), so the pattern is wrapped before the phase-scale error and the fringing act on it:
        both see where the wraps fall."""
        return self._defocused(phase_transmission(self._shown(phase), self._envelope))

    def _shown(self, phase: torch.Tensor) -> torch.Tensor:
        """The phase the panel shows for an addressed one: wrapped, scaled, smoothed by its fringing."""
        wrapped = torch.remainder(phase.float(), 2 * np.pi)
        return fringing_blur(wrapped * self.phase_scale, self.assumptions.crosstalk_sigma_px)

    def leak_field(self, phase: torch.Tensor, transmission: torch.Tensor | None = None) -> torch.Tensor | None:
        """Output field (the twin's window, centred) of the light every input-modulator pixel sends
        when dark (the layout's ``input_leak`` of full on, in phase with the image's light) through
        the Fourier SLM showing ``phase``; None where the layout's modulator does not leak. It does
        not depend on the image: one propagation per mask, not per frame. Its light reaches the tiles
        through every channel's ramp and adds to the image's field, so what the tiles read is not
        |h ∗ x|² alone: the demo's optics-aware student, trained without it, read 84.1 % through the
        embedded bench (leak 0.023) and 86.2 % with the simulated modulator's leak taken out.
        ``transmission``: this mask's :meth:`transmission`, reused where the leak's grid is the twin's."""
        if self._leak_grid is None:
            return None
        (rows, cols), (r, c) = self._leak_grid.shape, self.grid.shape
        if (rows, cols) == (r, c):
            t = self.transmission(phase) if transmission is None else transmission
        else:
            defocus = self._leak_unit_defocus * self.defocus_um.float()
            t = phase_transmission(self._shown(phase), self._leak_envelope) * torch.polar(torch.ones_like(defocus), defocus)
        field = torch.fft.fft2(self._leak_spectrum * t, norm="ortho")
        top, left = rows // 2 - r // 2, cols // 2 - c // 2
        return field[top : top + r, left : left + c]

    def pixel_transmission(self, pixels: torch.Tensor) -> torch.Tensor:
        """The same for an SLM whose pixels transmit the complex values ``pixels`` (R, C): a complex
        filter shown as it is, before any phase-only encoding."""
        return self._defocused(slm_transmission(pixels.to(torch.complex64), self._envelope))

    def _defocused(self, transmission: torch.Tensor) -> torch.Tensor:
        defocus = self._unit_defocus * self.defocus_um.float()
        return transmission * torch.polar(torch.ones_like(defocus), defocus)

    def _inside_image(self, amplitude: torch.Tensor, origin: tuple[int, int] | None) -> tuple[torch.Tensor, tuple[int, int]]:
        """The lit part of ``amplitude`` and its origin, for an image-only twin; light elsewhere is refused."""
        r0, c0, h, w = self._lit  # type: ignore[misc]
        if origin is None:
            patch = amplitude[..., r0 : r0 + h, c0 : c0 + w]
            if bool((amplitude.abs().sum() - patch.abs().sum()).abs() > 1e-6 * amplitude.abs().sum()):
                raise OpticsModelError("this twin models light from the image patch only; the amplitude lights other modulator pixels")
            return patch, (r0, c0)
        (r, c), (ph, pw) = origin, amplitude.shape[-2:]
        if r < r0 or c < c0 or r + ph > r0 + h or c + pw > c0 + w:
            raise OpticsModelError(f"a {ph}x{pw} patch at {origin} leaves the image patch ({h}x{w} at {(r0, c0)}) this twin models")
        return amplitude, origin

    def _sensor_xy(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Output-plane position (m, from the optical axis) of each camera pixel's centre at the pose:
        (x, y), each (rows, cols), float64 (differentiable in the pose)."""
        lay = self.layout
        device = self.shift.device
        v = (torch.arange(lay.camera_rows, dtype=torch.float64, device=device) - (lay.camera_rows - 1) / 2) * lay.camera_pitch_m
        u = (torch.arange(lay.camera_cols, dtype=torch.float64, device=device) - (lay.camera_cols - 1) / 2) * lay.camera_pitch_m
        vv, uu = torch.meshgrid(v, u, indexing="ij")
        c, s = torch.cos(self.rotation), torch.sin(self.rotation)
        k = torch.exp(self.log_scale)
        return k * (c * uu - s * vv) + self.shift[0] * 1e-6, k * (s * uu + c * vv) + self.shift[1] * 1e-6

    def camera_in_plane(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Where the camera's pixel centres fall on the output plane, in samples of the twin's grid:
        (column, row), each (rows, cols), float64 (differentiable in the pose)."""
        x, y = self._sensor_xy()
        dy, dx = self._out_spacing
        return x / dx + self.grid.cols // 2, y / dy + self.grid.rows // 2

    def camera_grid(self) -> torch.Tensor:
        """grid_sample grid (1, rows, cols, 2) of camera pixel centres in the output plane (differentiable)."""
        px, py = self.camera_in_plane()
        gx = 2 * px / (self.grid.cols - 1) - 1
        gy = 2 * py / (self.grid.rows - 1) - 1
        return torch.stack([gx, gy], dim=-1)[None].float()

    def _pose_fitted(self) -> bool:
        """Whether the camera's pose is being fitted (its gradient wanted): then the camera frame is sampled
        afresh on every call, else :meth:`read_groups` may read the plane through a fixed matrix."""
        return torch.is_grad_enabled() and any(p.requires_grad for p in (self.shift, self.rotation, self.log_scale))

    def _plane_readout(self, points: torch.Tensor, oversample: int, device: torch.device) -> PlaneReadout:
        """The :class:`PlaneReadout` for the pose now and these ``points``: built once per pose and
        points and kept (a few: one per channel group) on this twin."""
        key = (tuple(self.shift.detach().cpu().tolist()), float(self.rotation), float(self.log_scale), oversample,
               tuple(points.shape), hashlib.blake2b(points.detach().cpu().numpy().tobytes(), digest_size=16).digest(), str(device))
        readout = self._plane_readouts.get(key)
        if readout is None:
            if len(self._plane_readouts) >= _PLANE_READOUTS_KEPT:
                self._plane_readouts.clear()
            # built outside inference mode (its tensors are kept, and later calls may want gradients)
            with torch.inference_mode(False), torch.no_grad():
                x, y = (a.cpu().numpy() for a in self.camera_in_plane())
                readout = self._plane_readouts[key] = PlaneReadout(x, y, self.grid.shape, points, oversample).to(device)
        return readout

    def read_groups(self, amplitude: torch.Tensor, phases: Sequence[torch.Tensor], points: Sequence[torch.Tensor],
                    oversample: int = DEFAULT_OVERSAMPLE, origin: tuple[int, int] | None = None) -> list[torch.Tensor]:
        """The channel readouts (B, C_g, n, n) of one frame per phase mask in ``phases``, read at
        ``points[g]`` (:func:`~labctl.optics.readout.channel_points`): what
        ``read_channels(self(amplitude, phase, origin), points, oversample)`` gives for each, with the
        input's spectrum computed once for all masks and, while the camera's pose is not being fitted,
        the camera's sampling and the readout composed into one sparse matrix
        (:class:`~labctl.optics.plane_readout.PlaneReadout`). Same numbers to float rounding. On the
        demo's calibrated bench (2 masks, 128 images, 2 CPU threads) a forward and backward pass took
        1 034 ms reading each frame and 453 ms here (``benchmarks/optics_aware_step.py``); with the
        intensity's gradient written out too, the demo's optics-aware training step went from 1.46 s
        to 0.52 s."""
        if len(phases) != len(points):
            raise OpticsModelError(f"{len(phases)} phase masks but {len(points)} sets of readout points")
        if self._lit is not None:
            amplitude, origin = self._inside_image(amplitude, origin)
        amplitude = self._shown_amplitude(amplitude, self._leak_grid is not None)
        masks = []
        for phase in phases:
            transmission = self.transmission(phase)
            masks.append((transmission, self.leak_field(phase, transmission)))
        if self._pose_fitted():
            read = [functools.partial(_read_frames, self._camera, at, oversample) for at in points]
        else:
            gain = torch.exp(self.log_gain)
            read = [functools.partial(_times, self._plane_readout(at, oversample, amplitude.device), gain) for at in points]
        chunk = _images_per_chunk(self.grid.shape, amplitude)
        readouts: list[list[torch.Tensor]] = [[] for _ in phases]
        for start in range(0, amplitude.shape[0], chunk):
            spectrum = self._spectrum.apply(amplitude[start : start + chunk], origin)
            for g, (transmission, leak_field) in enumerate(masks):
                readouts[g].append(read[g](output_intensity(spectrum, transmission, leak_field)))
        return [torch.cat(parts) for parts in readouts]

    def read(self, amplitude: torch.Tensor, phase: torch.Tensor, points: torch.Tensor, oversample: int = DEFAULT_OVERSAMPLE,
             origin: tuple[int, int] | None = None) -> torch.Tensor:
        """:meth:`read_groups` for one mask: the readouts (B, C, n, n) of its frame at ``points``."""
        return self.read_groups(amplitude, [phase], [points], oversample, origin)[0]

    def forward(self, amplitude: torch.Tensor, phase: torch.Tensor, origin: tuple[int, int] | None = None) -> torch.Tensor:
        """Camera intensity (B, cam_rows, cam_cols), relative units.

        ``amplitude``: (B, rows, cols) over the whole input modulator, or, with ``origin`` = (row, col),
        a patch of it whose top-left pixel sits there (the rest of the modulator dark). A small image
        on a large modulator then costs a fraction of the input spectrum.
        """
        transmission = self.transmission(phase)
        return self.frames(amplitude, transmission, origin, self.leak_field(phase, transmission))

    def frames(self, amplitude: torch.Tensor, transmission: torch.Tensor, origin: tuple[int, int] | None = None,
               leak_field: torch.Tensor | None = None) -> torch.Tensor:
        """:meth:`forward` through a given Fourier-plane ``transmission`` (see :meth:`pixel_transmission`).

        ``leak_field``: the modulator's leak through the same mask (:meth:`leak_field`). The modulator
        then shows the leak on every pixel and the image over it as its amplitude table does
        (the layout's ``input_leak_adds``): ``max(amplitude, leak)`` (a table of the field maps what
        it cannot show to gray 0, the darkest field), i.e. ``amplitude − leak`` where the image is
        brighter; or ``leak + (1 − leak)·amplitude`` (binary mirrors, whose off state sends the leak
        under every level). None: the amplitudes alone, every other pixel dark."""
        if self._lit is not None:
            amplitude, origin = self._inside_image(amplitude, origin)
        amplitude = self._shown_amplitude(amplitude, leak_field is not None)
        return self._camera(output_intensity(self._spectrum.apply(amplitude, origin), transmission, leak_field))

    def _shown_amplitude(self, amplitude: torch.Tensor, leaking: bool) -> torch.Tensor:
        """The image's own field over the leak where the modulator leaks (see :meth:`frames`)."""
        amplitude = amplitude.float()
        if not leaking:
            return amplitude
        leak = self.layout.input_leak
        return amplitude * (1 - leak) if self.layout.input_leak_adds else (amplitude - leak).clamp_min(0)

    def _camera(self, intensity: torch.Tensor) -> torch.Tensor:
        """The camera's frames (B, rows, cols) of the output plane's ``intensity`` (B, grid rows, cols)."""
        grid = self.camera_grid().expand(intensity.shape[0], -1, -1, -1)
        frame = F.grid_sample(intensity[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=True)[:, 0]
        return frame * torch.exp(self.log_gain)
