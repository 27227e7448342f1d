"""Photons to digital numbers, the EMVA 1288 way: shot noise, dark current, read noise, gain,
offset, full well, ADC bit depth and saturation."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from labctl.optics.cpu import one_cpu_thread
from mock_hw.truth import SensorTruth

PLANCK_J_S = 6.62607015e-34
LIGHT_M_PER_S = 299_792_458.0
#: Mean electron count from which shot noise is drawn as a rounded normal N(λ, λ) rather than exactly:
#: its skewness 1/√λ is then under 0.1, below what the read noise and the ADC let a frame show.
NORMAL_SHOT_NOISE_FROM_E = 100.0


#: Pixels per step of :meth:`SensorModel.expose` on the CPU (one 256×256 frame): arrays that small
#: are reused from the allocator's free lists and stay in cache; a whole batch's arrays cost their page
#: faults on every call (measured: about ten times the arithmetic of an addition).
CPU_CHUNK_PIXELS = 2**16


def shot_noise(electrons: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Poisson counts of mean ``electrons``: exact below :data:`NORMAL_SHOT_NOISE_FROM_E`, a rounded
    normal of the same mean and variance above it (several times cheaper than ``torch.poisson`` at
    large means). A mostly dim frame is drawn exactly throughout: picking out its few bright pixels
    would cost more than it saves."""
    flat = electrons.reshape(-1)
    dim = torch.nonzero(flat < NORMAL_SHOT_NOISE_FROM_E).squeeze(1)
    if 2 * dim.numel() > flat.numel():
        return torch.poisson(electrons, generator=generator)
    counts = torch.randn(flat.shape, generator=generator, device=flat.device)
    counts = counts.mul_(flat.sqrt()).add_(flat).round_().clamp_(min=0)
    if dim.numel():
        counts[dim] = torch.poisson(flat[dim], generator=generator)
    return counts.reshape(electrons.shape)


class SensorModel:
    """A seeded sensor: the same seed and the same exposures give the same frames (on one device:
    a GPU draws other noise than the CPU from the same seed)."""

    def __init__(self, truth: SensorTruth, seed: int, noise: bool = True, device: torch.device = torch.device("cpu")) -> None:
        self.truth = truth
        self.noise = noise
        self._gen = torch.Generator(device=device).manual_seed(int(seed))
        self._prnu = torch.from_numpy(truth.prnu).float().to(device)
        self._dark = torch.from_numpy(truth.dark_current_map).float().to(device) * truth.dark_current_e_per_s
        #: collected electrons → electrons converted (None: linear); a lab-realism nonlinearity near full well
        self.response: Callable[[torch.Tensor], torch.Tensor] | None = None

    def expose(self, power_w: torch.Tensor, exposure_s: float, wavelength_m: float, gain: float = 1.0) -> np.ndarray:
        """``power_w``: (B, H, W) optical power on each pixel, on the sensor's device → (B, H, W) uint16
        frames on the host, where a camera delivers them."""
        t = self.truth
        photon_j = PLANCK_J_S * LIGHT_M_PER_S / wavelength_m
        per_w = self._prnu * (exposure_s / photon_j * t.quantum_efficiency)  # electrons per W, each pixel
        dark = self._dark * exposure_s
        k = t.gain_dn_per_e * gain
        frames = np.empty(power_w.shape, dtype=np.uint16)
        n = power_w.shape[0]
        step = n if power_w.device.type != "cpu" else max(1, CPU_CHUNK_PIXELS // max(1, per_w.numel()))
        with one_cpu_thread(power_w.device):  # many small steps: see labctl.optics.cpu
            for start in range(0, n, step):
                self._expose_step(power_w[start : start + step], per_w, dark, k, frames[start : start + step])
        return frames

    def _expose_step(self, power_w: torch.Tensor, per_w: torch.Tensor, dark: torch.Tensor, k: float, frames: np.ndarray) -> None:
        t = self.truth
        electrons = torch.addcmul(dark, power_w, per_w)
        if self.noise:
            electrons = shot_noise(electrons, self._gen)
        if self.response is not None:
            electrons = self.response(electrons)
        dn = torch.clamp(electrons, max=t.full_well_e).mul_(k).add_(t.dark_offset_dn)
        if self.noise:
            dn.add_(torch.randn(dn.shape, generator=self._gen, device=dn.device), alpha=t.read_noise_e * k)
        dn = dn.round_().clamp_(0, 2**t.bit_depth - 1)
        if dn.device.type != "cpu":
            dn = dn.to(torch.int32).cpu()
        torch.from_numpy(frames).copy_(dn)
