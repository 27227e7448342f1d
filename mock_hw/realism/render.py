"""The light path of a simulated optical table whose devices have lab realism switched on.

The same 4f physics as the table's own path (:mod:`labctl.optics`: exact input spectrum, pixelated
Fourier SLM with its aperture envelope, a lens, camera sampling), with the realism truths at their
places along the light:

laser (power and pointing drift) → input modulator (ideal, DMD bit planes or LC) → lens → Fourier SLM
(response with its drift and per-frame flicker, sub-pixel fringing, surface bow) × pupil (defocus and
Zernike aberrations) → lens → relay (distortion, vignetting) → sensor, plus stray light. The sensor's
nonlinearity is applied by the sensor model itself (between its shot noise and its full well).

What does not change between frames is built once: the pupil, the camera sampling grid and its
weights, the stray-light map; the Fourier SLM's pixels once per pattern shown, and its transmission
once per pattern and retardance factor (frames of a slow drift share it; flicker makes each frame's
its own).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from labctl.optics.propagation import fringing_blur, output_intensity, slm_transmission
from mock_hw.realism.devices import CameraRealismTruth, FourierRealismTruth, InputRealismTruth
from mock_hw.realism.input_modulator import DMDModulation, LCModulation
from mock_hw.realism.sensor_plane import pixel_positions_m, sample_grid

if TYPE_CHECKING:
    from mock_hw.optical_table import SimulatedOpticalTable

#: retardance factors closer than this share a Fourier transmission (phase error < 1e-4 rad)
RETARDANCE_QUANTUM = 1e-5
#: Fourier transmissions kept per pattern (one per retardance factor seen)
_MAX_TRANSMISSIONS = 16


def realism_of(device: object) -> object | None:
    return getattr(getattr(device, "_truth", None), "realism", None)


class LabRealism:
    """The realism light path of one table with one set of attached devices."""

    @classmethod
    def of(cls, table: SimulatedOpticalTable) -> LabRealism | None:
        """The path for ``table``'s devices, or ``None`` when none has realism on."""
        devices = (table._need("input_slm"), table._need("fourier_slm"), table._need("camera"))
        if all(realism_of(d) is None for d in devices):
            return None
        return cls(table)

    def __init__(self, table: SimulatedOpticalTable) -> None:
        s = table._static()
        self._table = table
        inp, fou, cam = table._need("input_slm"), table._need("fourier_slm"), table._need("camera")
        self._levels = inp.levels
        self._in_truth, self._f_truth, self._cam_truth = inp._truth, fou._truth, cam._truth
        self._in: InputRealismTruth | None = realism_of(inp)  # type: ignore[assignment]
        self._f: FourierRealismTruth | None = realism_of(fou)  # type: ignore[assignment]
        self._cam: CameraRealismTruth | None = realism_of(cam)  # type: ignore[assignment]
        self._device = d = table.device
        self._spectrum = s["spectrum"]
        grid = self._spectrum.grid  # type: ignore[attr-defined]
        self._envelope = s["envelope"]
        self._f_pitch_m = fou.grid.pitch_m
        # pupil: defocus × aberrations
        pupil = s["defocus"]
        if self._cam is not None and self._cam.aberration is not None:
            pupil = pupil * self._cam.aberration.pupil_factor(grid).to(d)  # type: ignore[operator]
        self._pupil = pupil
        # camera sampling through the relay
        cg = cam.grid
        x, y = pixel_positions_m(cg.rows, cg.cols, cg.pitch_m, cam._truth.pose)
        weight = np.full(cg.shape, float(s["area"]))  # type: ignore[arg-type]
        if self._cam is not None and self._cam.distortion is not None:
            x, y, area_ratio = self._cam.distortion.undistort_m(x, y)
            weight = weight * area_ratio
        if self._cam is not None and self._cam.vignetting is not None:
            weight = weight * self._cam.vignetting.relative_illumination(x, y)
        self._sample = sample_grid(grid, x, y).to(d)
        self._weight = torch.from_numpy(weight).float().to(d)
        stray = self._cam.stray_light if self._cam is not None else None
        self._stray = None if stray is None else torch.from_numpy(stray.fraction * stray.share(*cg.shape)).float().to(d)
        # surface bow of the Fourier SLM (gray-independent)
        fg = fou.grid
        surface = self._f.surface if self._f is not None else None
        self._surface_rad = None if surface is None else surface.phase_rad(fg.rows, fg.cols, table.optics.wavelength_m)
        # the beam on the modulator
        ig = inp.grid
        self._beam = s["beam"]
        self._in_y_m = torch.from_numpy((np.arange(ig.rows) - (ig.rows - 1) / 2) * ig.pitch_m).float().to(d)
        self._in_x_m = torch.from_numpy((np.arange(ig.cols) - (ig.cols - 1) / 2) * ig.pitch_m).float().to(d)
        # per pattern shown: (its copy, pixel transmissions, mean LC phase, transmissions by retardance)
        self._pattern: tuple[np.ndarray, torch.Tensor, torch.Tensor, dict[int, torch.Tensor]] | None = None

    # -- the laser and the input modulator -----------------------------------------------------------
    def _beam_at(self, t_s: np.ndarray) -> torch.Tensor:
        """√(power per modulator pixel) at times ``t_s``: (B, rows, cols), or (1, rows, cols) if unchanging."""
        beam = self._beam[None]  # type: ignore[index]
        truth, r = self._in_truth, self._in
        if r is None or (r.power_drift is None and r.pointing_drift is None):
            return beam
        if r.pointing_drift is not None and np.isfinite(truth.beam_waist_m):
            cy = truth.beam_center_m[0] + r.pointing_drift[0].at(t_s)
            cx = truth.beam_center_m[1] + r.pointing_drift[1].at(t_s)
            w = truth.beam_waist_m
            y0 = self._in_y_m - truth.beam_center_m[0]
            x0 = self._in_x_m - truth.beam_center_m[1]
            norm = torch.exp(-2 * y0**2 / w**2).sum() * torch.exp(-2 * x0**2 / w**2).sum()  # the beam at t = 0 on the modulator
            y = self._in_y_m[None, :] - torch.from_numpy(cy).float().to(self._device)[:, None]
            x = self._in_x_m[None, :] - torch.from_numpy(cx).float().to(self._device)[:, None]
            profile = torch.exp(-2 * y**2 / w**2)[:, :, None] * torch.exp(-2 * x**2 / w**2)[:, None, :]
            beam = torch.sqrt(truth.laser_power_w * profile / norm)
        if r.power_drift is not None:
            gain = torch.from_numpy(np.sqrt(1 + r.power_drift.at(t_s))).float().to(self._device)
            beam = beam * gain[:, None, None]
        return beam

    def _input_terms(
        self, gray: np.ndarray, start_s: np.ndarray, exposure_s: float, beam: torch.Tensor
    ) -> Iterator[tuple[torch.Tensor | None, torch.Tensor]]:
        """(weight per frame or None, field (B, rows, cols)) whose weighted intensities add up to a frame."""
        leak = self._in_truth.leak_amplitude
        modulator = self._in.modulator if self._in is not None else None
        if isinstance(modulator, LCModulation):
            field = torch.from_numpy(modulator.field(gray, self._levels)).to(torch.complex64).to(self._device)
            yield None, field * beam
        elif isinstance(modulator, DMDModulation):
            yield from self._dmd_terms(modulator, gray, start_s, exposure_s, beam, leak)
        else:
            amp = torch.from_numpy(gray.astype(np.float32)).to(self._device) / (self._levels - 1)
            yield None, (leak + (1 - leak) * amp) * beam

    def _dmd_terms(
        self, dmd: DMDModulation, gray: np.ndarray, start_s: np.ndarray, exposure_s: float, beam: torch.Tensor, leak: float
    ) -> Iterator[tuple[torch.Tensor | None, torch.Tensor]]:
        planes = dmd.planes(gray)  # (bits, B, rows, cols)
        weights = dmd.plane_weights(start_s, exposure_s)  # (B, bits)
        groups: list[tuple[np.ndarray, np.ndarray]] = []  # distinct planes and their summed weights
        for b in range(dmd.bits):
            for i, (plane, w) in enumerate(groups):
                if np.array_equal(plane, planes[b]):
                    groups[i] = (plane, w + weights[:, b])
                    break
            else:
                groups.append((planes[b], weights[:, b].copy()))
        for plane, w in groups:
            if not np.any(w > 0):
                continue
            mirrors = torch.from_numpy(plane).to(self._device)
            yield torch.from_numpy(w).float().to(self._device), (leak + (1 - leak) * mirrors) * beam

    def _spectrum_of(self, field: torch.Tensor) -> torch.Tensor:
        if field.is_complex():
            return self._spectrum.apply(field.real) + 1j * self._spectrum.apply(field.imag)  # type: ignore[attr-defined]
        return self._spectrum.apply(field)  # type: ignore[attr-defined]

    # -- the Fourier SLM -------------------------------------------------------------------------------
    def _pixels(self, gray: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, dict[int, torch.Tensor]]:
        if self._pattern is not None and np.array_equal(self._pattern[0], gray):
            return self._pattern[1:]  # type: ignore[return-value]
        truth = self._f_truth
        fringing = self._f.fringing if self._f is not None else None
        if fringing is not None:
            pixels, lc = fringing.pixels(gray, truth.response, self._f_pitch_m, self._surface_rad)
        else:
            lc = fringing_blur(torch.from_numpy(truth.response.phase(gray)), truth.crosstalk_sigma_px).numpy()
            pixels = np.exp(1j * (lc if self._surface_rad is None else lc + self._surface_rad))
        entry = (
            gray.copy(),
            torch.from_numpy(pixels).to(torch.complex64).to(self._device),
            torch.from_numpy(lc).float().to(self._device),
            {},
        )
        self._pattern = entry  # type: ignore[assignment]
        return entry[1:]  # type: ignore[return-value]

    def _retardance_factors(self, start_s: np.ndarray, t_mid_s: np.ndarray) -> np.ndarray:
        """δ per frame: the retardance is (1 + δ) times the response's (drift, flicker)."""
        delta = np.zeros(len(start_s))
        if self._f is not None and self._f.phase_drift is not None:
            delta += self._f.phase_drift.at(t_mid_s)
        if self._f is not None and self._f.flicker is not None:
            delta += self._f.flicker.retardance_noise(start_s)
        return delta

    def _transmissions(self, gray: np.ndarray, delta: np.ndarray) -> tuple[list[torch.Tensor], np.ndarray]:
        """The distinct Fourier transmissions of a batch, and which one each frame uses.

        A retardance factor scales the LC phase of each pixel: its transmission is multiplied by
        exp(iδ·φ_LC) (exact for a uniform pixel, first order in the phase spread within one)."""
        pixels, lc, built = self._pixels(gray)
        keys = np.rint(delta / RETARDANCE_QUANTUM).astype(np.int64)
        unique, index = np.unique(keys, return_inverse=True)
        out = []
        for key in unique.tolist():
            if key not in built:
                if len(built) >= _MAX_TRANSMISSIONS:
                    built.clear()
                scaled = pixels if key == 0 else pixels * torch.polar(torch.ones_like(lc), lc * (key * RETARDANCE_QUANTUM))
                built[key] = slm_transmission(scaled, self._envelope) * self._pupil  # type: ignore[arg-type,operator]
            out.append(built[key])
        return out, index.reshape(-1)

    # -- a batch of frames ---------------------------------------------------------------------------------
    def camera_power(self, input_gray: np.ndarray, fourier_gray: np.ndarray, start_s: np.ndarray, exposure_s: float) -> torch.Tensor:
        """Optical power (W) on each camera pixel, (B, cam_rows, cam_cols), for exposures starting at
        ``start_s`` (B,) and lasting ``exposure_s``: the mean power over each exposure."""
        start_s = np.asarray(start_s, dtype=np.float64)
        t_mid = start_s + exposure_s / 2
        beam = self._beam_at(t_mid)
        transmissions, which = self._transmissions(fourier_gray, self._retardance_factors(start_s, t_mid))
        n = input_gray.shape[0]
        intensity: torch.Tensor | None = None
        power_in = torch.zeros(n, device=self._device)
        for weight, field in self._input_terms(input_gray, start_s, exposure_s, beam):
            spectrum = self._spectrum_of(field)
            if len(transmissions) == 1:
                out = output_intensity(spectrum, transmissions[0])
            else:
                out = torch.empty(spectrum.shape, dtype=torch.float32, device=self._device)
                for k, t in enumerate(transmissions):
                    frames = torch.from_numpy(np.flatnonzero(which == k)).to(self._device)
                    out[frames] = output_intensity(spectrum[frames], t)
            p = torch.view_as_real(field.to(torch.complex64)).square().sum((-3, -2, -1)) if field.is_complex() else field.square().sum((-2, -1))
            p = p.expand(n)
            if weight is not None:
                out = out * weight[:, None, None]
                p = p * weight
            intensity = out if intensity is None else intensity + out
            power_in = power_in + p
        assert intensity is not None
        on_camera = F.grid_sample(
            intensity[:, None], self._sample.expand(n, -1, -1, -1), mode="bilinear", padding_mode="zeros", align_corners=True
        )[:, 0] * self._weight
        if self._stray is not None:
            on_camera = on_camera + power_in[:, None, None] * self._stray
        return on_camera

    def input_power_w(self, input_gray: np.ndarray, t_s: float) -> float:
        """Mean power leaving the modulator showing ``input_gray`` (rows, cols) at ``t_s`` (a DMD's over
        whole PWM periods)."""
        t = np.array([t_s])
        total = 0.0
        for weight, field in self._input_terms(input_gray[None], t, 0.0, self._beam_at(t)):
            p = float(field.abs().square().sum())
            total += p * (float(weight[0]) if weight is not None else 1.0)
        return total
