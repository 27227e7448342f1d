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
its own), the last few patterns' pixels kept (a sweep that comes back to a pattern does not redo its
sub-pixel fringing); the input spectrum once per distinct modulator field: the laser's power drift is
a factor per frame on the intensity (exact), and the beam's pointing is taken to the nearest
:data:`POINTING_QUANTUM_M` (a relative power error below 1e-5 on any modulator pixel), so the
frames of a slowly drifting beam share their spectrum.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
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
#: Fourier-SLM patterns whose pixels (sub-pixel fringing) are kept
_MAX_PATTERNS = 8
#: input spectra kept (one per distinct modulator field: pattern, bit plane, beam position)
_MAX_SPECTRA = 8
#: the beam centre's pointing drift is applied to the nearest multiple of this (20 nm: on a Gaussian
#: beam of waist w, a pixel at x sees its power change by at most 2·|x|·10 nm/w², under 1e-5 here)
POINTING_QUANTUM_M = 2e-8


def _digest(array: np.ndarray | torch.Tensor) -> bytes:
    data = array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else np.ascontiguousarray(array)
    return hashlib.blake2b(np.ascontiguousarray(data).view(np.uint8), digest_size=16).digest() + str(data.shape).encode()


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
        # per pattern shown, the last few: digest → (pixel transmissions, mean LC phase, transmissions by retardance)
        self._patterns: OrderedDict[bytes, tuple[torch.Tensor, torch.Tensor, dict[int, torch.Tensor]]] = OrderedDict()
        # input spectra by the digest of the modulator field they are of
        self._spectra: OrderedDict[bytes, torch.Tensor] = OrderedDict()
        # the DMD's distinct bit planes of the last input batch: (digest, [(planes, bits)])
        self._dmd_cache: tuple[bytes, list[tuple[torch.Tensor, list[int]]]] | None = None
        # the beam profile at the last pointing seen: ((y key, x key), profile)
        self._profile: tuple[tuple[int, int], torch.Tensor] | None = None

    # -- the laser and the input modulator -----------------------------------------------------------
    def _beam_at(self, t_s: np.ndarray) -> tuple[torch.Tensor, np.ndarray | None]:
        """√(power per modulator pixel) at times ``t_s`` without the power drift: (B, rows, cols), or
        (1, rows, cols) if unchanging; and the power drift's factor on each frame's intensity (None: none)."""
        beam = self._beam[None]  # type: ignore[index]
        truth, r = self._in_truth, self._in
        if r is None or (r.power_drift is None and r.pointing_drift is None):
            return beam, None
        if r.pointing_drift is not None and np.isfinite(truth.beam_waist_m):
            ky = np.rint(r.pointing_drift[0].at(t_s) / POINTING_QUANTUM_M).astype(np.int64)
            kx = np.rint(r.pointing_drift[1].at(t_s) / POINTING_QUANTUM_M).astype(np.int64)
            keys = list(zip(ky.tolist(), kx.tolist()))
            beam = torch.stack([self._profile_at(key) for key in keys]) if len(set(keys)) > 1 else self._profile_at(keys[0])[None]
        gain = None if r.power_drift is None else 1 + r.power_drift.at(t_s)
        return beam, gain

    def _profile_at(self, key: tuple[int, int]) -> torch.Tensor:
        """The beam (√W per pixel, the laser's power at t = 0) with its centre moved by ``key`` quanta (y, x)."""
        if self._profile is not None and self._profile[0] == key:
            return self._profile[1]
        truth = self._in_truth
        w = truth.beam_waist_m
        y0 = self._in_y_m - truth.beam_center_m[0]
        x0 = self._in_x_m - truth.beam_center_m[1]
        norm = torch.exp(-2 * y0**2 / w**2).sum() * torch.exp(-2 * x0**2 / w**2).sum()  # the beam at t = 0 on the modulator
        y = y0 - key[0] * POINTING_QUANTUM_M
        x = x0 - key[1] * POINTING_QUANTUM_M
        profile = torch.exp(-2 * y**2 / w**2)[:, None] * torch.exp(-2 * x**2 / w**2)[None, :]
        beam = torch.sqrt(truth.laser_power_w * profile / norm)
        self._profile = (key, beam)
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
        weights = dmd.plane_weights(start_s, exposure_s)  # (B, bits)
        for mirrors, bits in self._dmd_groups(dmd, gray):
            w = weights[:, bits].sum(axis=1)
            if not np.any(w > 0):
                continue
            yield torch.from_numpy(w).float().to(self._device), (leak + (1 - leak) * mirrors) * beam

    def _dmd_groups(self, dmd: DMDModulation, gray: np.ndarray) -> list[tuple[torch.Tensor, list[int]]]:
        """The distinct bit-plane stacks (B, rows, cols) of a batch of gray patterns, each with the bits
        that show it; kept for the last batch (a calibration shows one input under many masks)."""
        key = _digest(gray)
        if self._dmd_cache is not None and self._dmd_cache[0] == key:
            return self._dmd_cache[1]
        planes = dmd.planes(gray)  # (bits, B, rows, cols)
        groups: list[tuple[np.ndarray, list[int]]] = []
        for b in range(dmd.bits):
            for plane, bits in groups:
                if np.array_equal(plane, planes[b]):
                    bits.append(b)
                    break
            else:
                groups.append((planes[b], [b]))
        out = [(torch.from_numpy(plane).to(self._device), bits) for plane, bits in groups]
        self._dmd_cache = (key, out)
        return out

    def _spectrum_of(self, field: torch.Tensor) -> torch.Tensor:
        """Input spectrum of each frame's field (B, rows, cols); the spectra of fields seen lately are
        kept (a calibration shows one input under many masks)."""
        keys = [_digest(f) for f in field]
        unique = list(dict.fromkeys(keys))
        missing = [k for k in unique if k not in self._spectra]
        computed: dict[bytes, torch.Tensor] = {}
        if missing:
            first = {k: i for i, k in reversed(list(enumerate(keys)))}
            fields = field[[first[k] for k in missing]]
            if fields.is_complex():
                spectra = self._spectrum.apply(fields.real) + 1j * self._spectrum.apply(fields.imag)  # type: ignore[attr-defined]
            else:
                spectra = self._spectrum.apply(fields)  # type: ignore[attr-defined]
            computed = dict(zip(missing, spectra))
        found = {k: computed[k] if k in computed else self._spectra[k] for k in unique}  # before any eviction
        for k in unique:
            if k not in computed:
                if k in self._spectra:  # (an insertion above may have just evicted it)
                    self._spectra.move_to_end(k)
            elif len(unique) <= _MAX_SPECTRA:
                self._spectra[k] = computed[k]
                if len(self._spectra) > _MAX_SPECTRA:
                    self._spectra.popitem(last=False)
        if len(unique) == 1:
            one = found[unique[0]]
            return one[None].expand(len(keys), *one.shape)
        return torch.stack([found[k] for k in keys])

    # -- the Fourier SLM -------------------------------------------------------------------------------
    def _pixels(self, gray: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, dict[int, torch.Tensor]]:
        key = _digest(gray)
        entry = self._patterns.get(key)
        if entry is not None:
            self._patterns.move_to_end(key)
            return entry
        truth = self._f_truth
        fringing = self._f.fringing if self._f is not None else None
        if fringing is not None:
            pixels, lc = fringing.pixels(gray, truth.response, self._f_pitch_m, self._surface_rad)
        else:
            lc = fringing_blur(torch.from_numpy(truth.response.phase(gray)), truth.crosstalk_sigma_px).numpy()
            pixels = np.exp(1j * (lc if self._surface_rad is None else lc + self._surface_rad))
        entry = (
            torch.from_numpy(pixels).to(torch.complex64).to(self._device),
            torch.from_numpy(lc).float().to(self._device),
            {},
        )
        self._patterns[key] = entry
        if len(self._patterns) > _MAX_PATTERNS:
            self._patterns.popitem(last=False)
        return entry

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
        beam, gain = self._beam_at(t_mid)
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
        if gain is not None:  # the laser's power drift: a factor on each frame's light
            factor = torch.from_numpy(gain).float().to(self._device)
            intensity = intensity * factor[:, None, None]
            power_in = power_in * factor
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
        beam, gain = self._beam_at(t)
        for weight, field in self._input_terms(input_gray[None], t, 0.0, beam):
            p = float(field.abs().square().sum())
            total += p * (float(weight[0]) if weight is not None else 1.0)
        return total * (float(gain[0]) if gain is not None else 1.0)
