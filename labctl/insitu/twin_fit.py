"""Twin refinement: fit the twin's free parameters to frames the bench captured for known inputs.

The camera pose starts from the registration (:func:`labctl.optics.geometry.pose_from_affine`);
defocus, a phase-scale error of the phase table, a residual pose correction and a per-channel gain
and offset are then fitted by gradient descent so that the twin's tile readouts match the bench's.
:class:`RefinableTwin` adds what a real bench has and the shared twin holds fixed: the input
modulator's leak (finite contrast: light from every pixel, the dark ones too), the laser beam's
Gaussian profile on the modulator, the Fourier SLM's fill factor (zero-order light from the pixel
gaps) and fringing crosstalk, lens aberrations beyond defocus (Noll 5–11 over the pupil) and the
relay's radial distortion. What none of these can express (a binary DMD's bit planes, flicker,
drift, the sensor's nonlinearity, stray light, vignetting within a tile, noise) is left in the
residual, which the fit reports (:func:`residual_report`).
The fitted twin is what physics-aware training sends its gradients through.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from labctl.optics.errors import OpticsModelError
from labctl.optics.geometry import CameraPose
from labctl.optics.layout import OpticalLayout
from labctl.optics.propagation import output_intensity, phase_transmission, slm_transmission
from labctl.optics.readout import DEFAULT_OVERSAMPLE, read_channels
from labctl.optics.twin import FREE_PARAMETERS, FourFTwin, TwinAssumptions
from labctl.optics.zernike import zernike

#: Adam step per parameter, in its own units (µm of shift or defocus, radians, log-scale, fraction;
#: the beam's centre in units of the modulator's half-diagonal, its curvature in 1/half-diagonal²;
#: distortion coefficients over the camera's half-diagonal; crosstalk in SLM pixels)
STEP = {
    "shift": 0.5, "rotation": 1e-3, "log_scale": 1e-3, "defocus_um": 10.0, "phase_scale": 0.005, "log_gain": 0.01,
    "input_leak": 0.002, "beam_centre": 0.01, "beam_curvature": 0.02, "fill_gap": 0.005, "crosstalk_var": 0.01,
    "zernike_rad": 0.02, "distortion": 0.002, "fringing_px": 0.01,
}

#: Noll indices of the aberrations the refinable twin fits (astigmatism, coma, trefoil, spherical)
ZERNIKE_NOLL = (5, 6, 7, 8, 9, 10, 11)

#: the refinable twin's parameters beyond the shared twin's
EXTRA_PARAMETERS = ("input_leak", "beam_centre", "beam_curvature", "fill_gap", "crosstalk_var", "fringing_px", "zernike_rad", "distortion")

#: what the refinable twin's family cannot express (left in the residual)
NOT_MODELLED = (
    "the panel's nonlinear response within a fringing field (the twin blurs phase, the panel voltage)",
    "SLM surface bow beyond what defocus and Noll 5-11 over the pupil express", "per-frame phase flicker",
    "drift of laser power, pointing and phase response", "sensor nonlinearity near saturation", "stray light",
    "vignetting within a tile", "shot and read noise",
)


def not_modelled(twin: FourFTwin) -> list[str]:
    """What ``twin`` leaves in the residual: :data:`NOT_MODELLED` and its input modulator's share."""
    if getattr(twin, "input_bits", None) is None:
        first = "an input modulator other than a linear amplitude one (a DMD's bit planes, an LC's cos² and phase coupling)"
    else:
        first = "a DMD's gray error from an exposure that is not a whole number of PWM periods"
    return [first, *NOT_MODELLED]


#: the default fit: the shared twin's pose, defocus and phase scale, then what a lab bench adds
#: (fringing at sub-pixel resolution rather than as a blur of the phase)
DEFAULT_PARAMETERS = ("shift", "rotation", "log_scale", "defocus_um", "phase_scale") + tuple(
    n for n in EXTRA_PARAMETERS if n != "crosstalk_var"
)

#: where the fit starts the fringing width (SLM pixels): an LC layer about a third of a pixel thick
START_FRINGING_PX = 0.3


@dataclass
class TwinFitConfig:
    """Steps of Adam over random batches of the captured frames (the fit's main gains come within the
    first few dozen steps: 60 of 8 frames took 130 s on 2 busy cores at 14×14 digits)."""

    steps: int = 60
    batch_size: int = 8
    parameters: tuple[str, ...] = DEFAULT_PARAMETERS
    seed: int = 0


#: sub-pixel samples per SLM pixel and axis of :func:`subpixel_fringing`
FRINGING_OVERSAMPLE = 4


def subpixel_fringing(phase: torch.Tensor, width_px: torch.Tensor, oversample: int = FRINGING_OVERSAMPLE) -> torch.Tensor:
    """Complex transmission (R, C) of each SLM pixel under fringing fields: the addressed phase (a
    proxy for the drive voltage, nearly linear in it through a calibrated table) sampled at
    ``oversample``² points per pixel, smoothed by a Gaussian of ``width_px`` pixels (edge-replicated),
    and each pixel's mean of ``exp(iφ)``: below unit modulus where the phase steps, e.g. at a ramp's
    2π wrap (the flyback region diffracts light out of the pixel's mean). Differentiable in the
    phase and in the width (kept within 0.02–1.5 px)."""
    s = oversample
    sigma = width_px.clamp(0.02, 1.5).to(phase.dtype) * s
    radius = int(math.ceil(4 * 1.5 * s))
    t = torch.arange(-radius, radius + 1, dtype=phase.dtype, device=phase.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    fine = phase.repeat_interleave(s, dim=-2).repeat_interleave(s, dim=-1)[None, None]
    fine = F.pad(fine, (radius, radius, radius, radius), mode="replicate")
    fine = F.conv2d(F.conv2d(fine, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))
    re = F.avg_pool2d(torch.cos(fine), s)[0, 0]
    im = F.avg_pool2d(torch.sin(fine), s)[0, 0]
    return torch.complex(re, im)


def _blur(phase: torch.Tensor, variance_px2: torch.Tensor) -> torch.Tensor:
    """Fringing crosstalk as a blur of the addressed phase (as :func:`labctl.optics.propagation.fringing_blur`)
    whose width is differentiable down to none: per axis the 5-tap binomial-like kernel
    ``[a/2, 1−a, a/2] * [a/2, 1−a, a/2]``, ``a = variance/2`` (variance exact, up to 1.3 px²),
    reflect-padded at the panel's edges."""
    a = (variance_px2.clamp(0, 1.3) / 2).to(phase.dtype)
    three = torch.stack([a / 2, 1 - a, a / 2])
    k = F.conv1d(F.pad(three.view(1, 1, 3), (2, 2)), three.flip(0).view(1, 1, 3)).view(-1)  # (5,)
    lead = phase.shape[:-2]
    x = F.pad(phase.reshape(-1, 1, *phase.shape[-2:]), (2, 2, 2, 2), mode="reflect")
    x = F.conv2d(F.conv2d(x, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))
    return x.reshape(*lead, *phase.shape[-2:])


class RefinableTwin(FourFTwin):
    """The shared twin plus the parameters of a real bench that twin refinement can fit.

    All start where the shared twin is (the calibrated leak, a flat beam, fill factor ``1 − fill_gap``,
    the assumed crosstalk, no aberration, no distortion), so an unfitted refinable twin is the shared
    twin up to its fill factor and crosstalk assumptions and its model of the leak: the raw
    modulator's ``leak + (1 − leak)·amplitude`` with the beam over it, where the shared twin's
    modulator shows ``max(amplitude, leak)`` through its amplitude table.
    """

    free_parameters = FREE_PARAMETERS + EXTRA_PARAMETERS

    def __init__(
        self, layout: OpticalLayout, pose: CameraPose = CameraPose(), assumptions: TwinAssumptions | None = None,
        fringing_px: float = 0.0, input_bits: int | None = None,
    ) -> None:
        """``assumptions``: None, the layout's calibrated panel (:meth:`TwinAssumptions.of`), except that
        a ``fringing_px`` above 0 replaces its fringing blur (one effect, not two on top of each other).
        ``fringing_px``: the starting width (SLM pixels) of :func:`subpixel_fringing` (0: none;
        a fit needs a start above zero to move it). ``input_bits``: the input modulator is a DMD of
        this many bit planes (gray by pulse-width modulation over whole periods: each frame the sum of
        its planes' intensities, plane b weighted 2^b/(2^bits − 1)); None: a linear amplitude modulator."""
        if assumptions is None:  # the calibrated panel; its fringing as a blur only where no sub-pixel model stands for it
            panel = TwinAssumptions.of(layout)
            assumptions = TwinAssumptions(0.0 if fringing_px > 0 else panel.crosstalk_sigma_px, panel.fill_factor)
        super().__init__(layout, pose, assumptions)
        self.input_bits = input_bits
        geo = self.grid.geometry
        # the pupil: the Fourier plane over the SLM's half-diagonal (the lenses' clear aperture just covers the panel)
        y, x = self.grid.fourier_positions_m()
        radius = 0.5 * geo.fourier_pitch_m * float(np.hypot(geo.rows, geo.cols))
        yy, xx = np.broadcast_arrays(y / radius, x / radius)
        rho, theta = np.hypot(xx, yy), np.arctan2(yy, xx)
        self.register_buffer("_zernike", torch.from_numpy(np.stack([zernike(j, rho, theta) for j in ZERNIKE_NOLL])).float(), persistent=False)
        dy, dx = self.grid.displacements()
        self.register_buffer("_disp_y", torch.from_numpy(dy / geo.rows).float(), persistent=False)
        self.register_buffer("_disp_x", torch.from_numpy(dx / geo.cols).float(), persistent=False)
        # modulator pixel positions over its half-diagonal (the beam's coordinates)
        half = 0.5 * float(np.hypot(layout.input_rows, layout.input_cols))
        self.register_buffer("_in_y", torch.from_numpy((np.arange(layout.input_rows) - (layout.input_rows - 1) / 2) / half).float(), persistent=False)
        self.register_buffer("_in_x", torch.from_numpy((np.arange(layout.input_cols) - (layout.input_cols - 1) / 2) / half).float(), persistent=False)
        # the camera's half-diagonal in the output plane (distortion's normalising radius)
        self._cam_radius_m = 0.5 * layout.camera_pitch_m * float(np.hypot(layout.camera_rows, layout.camera_cols)) * pose.scale
        self.input_leak = nn.Parameter(torch.tensor(float(layout.input_leak)), requires_grad=False)
        self.beam_centre = nn.Parameter(torch.zeros(2), requires_grad=False)  # (y, x)
        self.beam_curvature = nn.Parameter(torch.tensor(0.0), requires_grad=False)  # 2/w², w over the half-diagonal
        self.fill_gap = nn.Parameter(torch.tensor(1.0 - assumptions.fill_factor), requires_grad=False)
        self.fringing_px = nn.Parameter(torch.tensor(float(fringing_px)), requires_grad=False)
        self.crosstalk_var = nn.Parameter(torch.tensor(float(assumptions.crosstalk_sigma_px) ** 2), requires_grad=False)  # px²
        self.zernike_rad = nn.Parameter(torch.zeros(len(ZERNIKE_NOLL)), requires_grad=False)
        self.distortion = nn.Parameter(torch.zeros(2), requires_grad=False)  # (q1, q2): output = sensor·(1 + q1 r² + q2 r⁴)

    # -- parameters -----------------------------------------------------------------------------------
    def project(self) -> None:
        """Keep the parameters physical after an optimiser step (a leak, gap or blur is never negative,
        a beam never diverges), so that a bound one can come back."""
        with torch.no_grad():
            self.input_leak.clamp_(0, 0.5)
            self.fill_gap.clamp_(0, 0.5)
            self.crosstalk_var.clamp_(0, 1.3)
            self.beam_curvature.clamp_(min=0)
            if float(self.fringing_px) > 0:
                self.fringing_px.clamp_(0.02, 1.5)

    @property
    def fill_factor(self) -> torch.Tensor:
        return 1 - self.fill_gap.clamp(0, 0.5)

    def describe(self) -> dict[str, float]:
        out = super().describe()
        out.update(
            input_leak=float(self.input_leak.clamp(0, 0.5)), beam_centre_y=float(self.beam_centre[0]), beam_centre_x=float(self.beam_centre[1]),
            beam_waist=float(torch.sqrt(2 / self.beam_curvature.clamp_min(1e-9))) if float(self.beam_curvature) > 0 else float("inf"),
            fill_factor=float(self.fill_factor), crosstalk_px=float(self.crosstalk_var.clamp(0, 1.3).sqrt()),
            fringing_px=float(self.fringing_px),
            distortion_q1=float(self.distortion[0]), distortion_q2=float(self.distortion[1]),
        )
        out.update({f"zernike_{j}_rad": float(c) for j, c in zip(ZERNIKE_NOLL, self.zernike_rad.tolist())})
        return out

    # -- physics --------------------------------------------------------------------------------------
    def _envelope_now(self) -> torch.Tensor:
        """:func:`labctl.optics.propagation.aperture_envelope` at the current fill factor (differentiable)."""
        fill = self.fill_factor
        linear = torch.sqrt(fill)
        ey = torch.sinc(linear * self._disp_y) * (self._disp_y.abs() * self.grid.geometry.rows < self.grid.rows / 2)
        ex = torch.sinc(linear * self._disp_x) * (self._disp_x.abs() * self.grid.geometry.cols < self.grid.cols / 2)
        return fill * ey[:, None] * ex[None, :]

    def transmission(self, phase: torch.Tensor) -> torch.Tensor:
        phase = phase.float() * self.phase_scale
        if self.crosstalk_var.requires_grad or float(self.crosstalk_var) > 0:
            phase = _blur(phase, self.crosstalk_var)
        if self.fringing_px.requires_grad or float(self.fringing_px) > 0:
            t = slm_transmission(subpixel_fringing(phase, self.fringing_px), self._envelope_now())
        else:
            t = phase_transmission(phase, self._envelope_now())
        t = self._defocused(t)
        wavefront = torch.einsum("j,jyx->yx", self.zernike_rad, self._zernike)
        return t * torch.polar(torch.ones_like(wavefront), wavefront)

    def pixel_transmission(self, pixels: torch.Tensor) -> torch.Tensor:
        raise OpticsModelError("the refinable twin is for phase masks (twin refinement and physics-aware training)")

    def _leak_model(self, layout: OpticalLayout, pose: CameraPose) -> None:
        """None: :meth:`frames` propagates the leak with the image (its grid covers the modulator), so
        the shared twin's :meth:`leak_field` gives none."""
        return None

    def beam(self) -> torch.Tensor:
        """Field amplitude of the laser over the modulator (rows, cols), 1 at the beam's centre."""
        y = self._in_y - self.beam_centre[0]
        x = self._in_x - self.beam_centre[1]
        c = self.beam_curvature.clamp_min(0) / 2  # amplitude exp(−r²/w²) = exp(−(curvature/2)·r²)
        return torch.exp(-c * y.square())[:, None] * torch.exp(-c * x.square())[None, :]

    def _distorted(self) -> bool:
        return self.distortion.requires_grad or bool(self.distortion.abs().sum() > 0)

    def _sensor_r2(self) -> torch.Tensor:
        """Squared radius of each camera pixel in the output plane, over the camera's half-diagonal."""
        x, y = self._sensor_xy()
        return ((x.square() + y.square()) / self._cam_radius_m**2).float()

    def camera_in_plane(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The shared twin's camera positions with the relay's distortion: a sensor pixel at radius r
        (over the camera's half-diagonal) sees the output plane at r·(1 + q1·r² + q2·r⁴)."""
        if not self._distorted():
            return super().camera_in_plane()
        x, y = self._sensor_xy()
        r2 = (x.square() + y.square()) / self._cam_radius_m**2
        f = 1 + self.distortion[0].double() * r2 + self.distortion[1].double() * r2.square()
        dy, dx = self._out_spacing
        return x * f / dx + self.grid.cols // 2, y * f / dy + self.grid.rows // 2

    def read_groups(self, amplitude: torch.Tensor, phases: Sequence[torch.Tensor], points: Sequence[torch.Tensor],
                    oversample: int = DEFAULT_OVERSAMPLE, origin: tuple[int, int] | None = None) -> list[torch.Tensor]:
        """Read from :meth:`frames`, one per mask: this twin's camera (lens distortion, a DMD's bit
        planes, the beam) is more than a plane sampled at fixed points."""
        if len(phases) != len(points):
            raise OpticsModelError(f"{len(phases)} phase masks but {len(points)} sets of readout points")
        return [read_channels(self(amplitude, phase, origin), at, oversample) for phase, at in zip(phases, points)]

    def frames(self, amplitude: torch.Tensor, transmission: torch.Tensor, origin: tuple[int, int] | None = None,
               leak_field: None = None) -> torch.Tensor:
        """Camera intensity for modulator amplitudes over the whole modulator (``origin`` None) or a
        patch at ``origin``; the beam and the leak of every dark pixel included (so ``leak_field``,
        the shared twin's, is refused)."""
        if leak_field is not None:
            raise OpticsModelError("the refinable twin models the modulator's leak itself (input_leak); pass no leak_field")
        lay = self.layout
        side = lay.image_size * lay.image_scale
        if origin is None:  # the image patch alone holds light (the session's inputs): its spectrum is cheaper
            r0, c0 = lay.image_row, lay.image_col
            patch = amplitude[..., r0 : r0 + side, c0 : c0 + side]
            if bool((amplitude.abs().sum() - patch.abs().sum()).abs() <= 1e-6 * (amplitude.abs().sum() + 1e-12)):
                amplitude, origin = patch, (r0, c0)
        h, w = amplitude.shape[-2:]
        r0, c0 = origin if origin is not None else (0, 0)
        beam = self.beam()
        leak = self.input_leak.clamp(0, 0.5)
        lit = beam[r0 : r0 + h, c0 : c0 + w]
        leak_spectrum = leak * self._spectrum.apply(beam[None])  # the leak: every pixel, dark ones too
        if self.input_bits is None:
            intensity = output_intensity(self._spectrum.apply(amplitude.float() * lit * (1 - leak), origin) + leak_spectrum, transmission)
        else:  # a DMD: binary mirrors, gray by PWM; the camera adds up the bit planes' intensities
            levels = 2**self.input_bits - 1
            gray = torch.round(amplitude.detach().float() * levels).to(torch.int64)
            intensity = None
            shown: list[tuple[torch.Tensor, float]] = []  # distinct planes and their summed weights
            for b in range(self.input_bits - 1, -1, -1):
                plane = ((gray >> b) & 1).float()
                for i, (seen, weight) in enumerate(shown):
                    if torch.equal(seen, plane):
                        shown[i] = (seen, weight + 2.0**b / levels)
                        break
                else:
                    shown.append((plane, 2.0**b / levels))
            for plane, weight in shown:
                part = output_intensity(self._spectrum.apply(plane * lit * (1 - leak), origin) + leak_spectrum, transmission)
                intensity = part * weight if intensity is None else intensity + part * weight
        grid = self.camera_grid().expand(intensity.shape[0], -1, -1, -1)
        frame = F.grid_sample(intensity[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=True)[:, 0]
        if self._distorted():  # a camera pixel collects the output-plane area its inverse map covers
            r2 = self._sensor_r2()
            q1, q2 = self.distortion
            frame = frame * ((1 + q1 * r2 + q2 * r2.square()) * (1 + 3 * q1 * r2 + 5 * q2 * r2.square()))
        return frame * torch.exp(self.log_gain)


@dataclass
class ChannelAffine:
    """bench readout ≈ gain · twin readout + offset, per channel (torch, differentiable in the input)."""

    gain: torch.Tensor  # (C,)
    offset: torch.Tensor  # (C,)

    def __call__(self, readout: torch.Tensor) -> torch.Tensor:
        return readout * self.gain[None, :, None, None] + self.offset[None, :, None, None]

    @classmethod
    def fit(cls, twin_readout: torch.Tensor, bench_readout: torch.Tensor) -> ChannelAffine:
        gains, offsets = [], []
        for c in range(twin_readout.shape[1]):
            x = twin_readout[:, c].reshape(-1).double()
            y = bench_readout[:, c].reshape(-1).double()
            unit = x.abs().max().clamp_min(1e-300)  # the twin's units may be far from 1: lstsq would call them rank-deficient
            design = torch.stack([x / unit, torch.ones_like(x)], dim=1)
            solution = torch.linalg.lstsq(design, y[:, None]).solution[:, 0]
            gains.append(solution[0] / unit)
            offsets.append(solution[1])
        return cls(torch.stack(gains).float(), torch.stack(offsets).float())


def twin_readout(twin: FourFTwin, amplitudes: torch.Tensor, phase: torch.Tensor, points: torch.Tensor, oversample: int, chunk: int = 32) -> torch.Tensor:
    """Twin readouts (B, C, n, n), without gradients, in chunks."""
    with torch.no_grad():
        return torch.cat([twin.read(amplitudes[i : i + chunk], phase, points, oversample) for i in range(0, len(amplitudes), chunk)])


def match(a: torch.Tensor, b: torch.Tensor) -> float:
    """Correlation of two readout sets over all channels and pixels (1 = identical up to scale)."""
    return float(np.corrcoef(a.detach().reshape(-1).numpy(), b.detach().reshape(-1).numpy())[0, 1])


def residual_report(fitted: torch.Tensor, bench_readout: torch.Tensor) -> dict[str, float]:
    """What the fitted twin leaves unexplained in ``bench_readout`` (B, C, n, n), given its readouts
    mapped onto the bench's units (``fitted``): the residual's RMS over the bench readout's RMS, overall
    and in the worst channel, and the share of the residual's power that is one level per frame and
    channel (what a frame-wise effect leaves: drift, flicker, stray light), the rest being structure
    within the tiles (input modulator, fringing, vignetting, noise)."""
    residual = (bench_readout - fitted).double()
    ref = bench_readout.double().square().mean().sqrt() + 1e-12
    per_channel = residual.square().mean(dim=(0, 2, 3)).sqrt() / (bench_readout.double().square().mean(dim=(0, 2, 3)).sqrt() + 1e-12)
    total = residual.square().mean() + 1e-30
    frame_wise = residual.mean(dim=(2, 3)).square().mean()
    return {
        "residual_rel": float(residual.square().mean().sqrt() / ref),
        "residual_rel_worst_channel": float(per_channel.max()),
        "residual_frame_share": float(frame_wise / total),
    }


def refine_twin(
    twin: FourFTwin,
    amplitudes: torch.Tensor,
    phase: torch.Tensor,
    bench_readout: torch.Tensor,
    points: torch.Tensor,
    oversample: int,
    config: TwinFitConfig = TwinFitConfig(),
    on_step: Callable[[int, float], None] = lambda step, loss: None,
) -> tuple[ChannelAffine, dict[str, float]]:
    """Fit ``twin`` in place to ``bench_readout`` (B, C, n, n) of ``amplitudes`` under ``phase``.

    Returns the per-channel affine that maps the fitted twin's readouts onto the bench's, and a
    summary (match before and after, fitted parameters).
    """
    phase = phase.detach()
    before = twin_readout(twin, amplitudes, phase, points, oversample)
    summary = {"match_before": match(before, bench_readout)}
    names = tuple(n for n in config.parameters if hasattr(twin, n))  # the shared twin has no lab parameters
    twin.fit_parameters(names)
    optimiser = torch.optim.Adam([{"params": [getattr(twin, name)], "lr": STEP[name]} for name in names])
    generator = torch.Generator().manual_seed(config.seed)
    n = amplitudes.shape[0]
    scale = bench_readout.abs().mean(dim=(0, 2, 3), keepdim=True) + 1e-12
    for step in range(config.steps):
        idx = torch.randint(0, n, (min(config.batch_size, n),), generator=generator)
        twin_out = twin.read(amplitudes[idx], phase, points, oversample)
        target = bench_readout[idx] / scale
        affine = ChannelAffine.fit(twin_out.detach(), target)  # best gain/offset for the current twin
        loss = (affine(twin_out) - target).square().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if isinstance(twin, RefinableTwin):
            twin.project()
        on_step(step, float(loss.detach()))
    twin.fit_parameters(())
    after = twin_readout(twin, amplitudes, phase, points, oversample)
    summary["match_after"] = match(after, bench_readout)
    affine = ChannelAffine.fit(after, bench_readout)
    summary["residual_before"] = residual_report(ChannelAffine.fit(before, bench_readout)(before), bench_readout)["residual_rel"]
    summary.update(residual_report(affine(after), bench_readout))
    summary.update(twin.describe())
    return affine, summary


def lc_phase_offset(table, phase: np.ndarray, gray: np.ndarray) -> np.ndarray:
    """Multiples of 2π (per pixel) that turn the target ``phase`` into the phase the liquid crystal
    has at the ``gray`` levels the phase table ``table`` wrote for it.

    A panel whose response spans more than 2π reaches some phases at two gray levels 2π apart, and a
    calibrated table may pick either (e.g. 60 and 253 for nearly the same target): the wrapped phase
    is the same, but the drive voltage, and with it the fringing between neighbours, is not. The
    gray → phase map is rebuilt from the table (its centre region): each gray level it uses stands for
    the circular mean of its targets, unwrapped along the gray axis, interpolated between them.
    """
    g = np.asarray(table.gray)
    centre = g if g.ndim == 1 else g[g.shape[0] // 2, g.shape[1] // 2]
    k = centre.size
    sums = np.zeros(int(2**table.bit_depth), dtype=complex)
    np.add.at(sums, centre.astype(np.int64), np.exp(2j * np.pi * np.arange(k) / k))
    used = np.flatnonzero(np.abs(sums) > 0)
    unwrapped = np.unwrap(np.angle(sums[used]))
    unwrapped = unwrapped - 2 * np.pi * np.floor(unwrapped[0] / (2 * np.pi) + 0.5)  # the lowest gray level near 0
    lc = np.interp(np.asarray(gray, dtype=np.float64), used, unwrapped)
    return 2 * np.pi * np.round((lc - np.asarray(phase, dtype=np.float64)) / (2 * np.pi))
