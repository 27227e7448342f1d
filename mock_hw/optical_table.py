"""The simulated optical table: the physical 4f model that mock SLMs, camera and instruments share.

Each mock device attaches itself here when opened; the camera asks the table for the optical power
on its pixels given what the modulators show. Physics comes from :mod:`labctl.optics` (the same code
the optics-aware student and the digital twin use); the non-idealities come from each device's
hidden truth. The physics runs on the torch device the camera names (``device`` in its bench-file
table); patterns arrive from the host as numpy arrays, as a real SLM's do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from drivers.bench import OpticsSpec
from drivers.errors import DeviceError
from labctl.optics.geometry import FourFGeometry, camera_pixel_area_ratio
from labctl.optics.propagation import aperture_envelope, defocus_phase, fringing_blur, phase_transmission
from labctl.optics.render import FrameRenderer
from labctl.optics.sampling import InputSpectrum, SimulationGrid, camera_sample_grid, camera_sample_window
from mock_hw.clock import SimClock
from mock_hw.realism.render import LabRealism

if TYPE_CHECKING:
    from mock_hw.camera import MockCamera
    from mock_hw.instruments import MockShutter
    from mock_hw.slm import MockSLM


class SimulatedOpticalTable:
    def __init__(self, optics: OpticsSpec) -> None:
        self.optics = optics
        self.clock = SimClock(realtime=False)
        self.input_slm: MockSLM | None = None
        self.fourier_slm: MockSLM | None = None
        self.camera: MockCamera | None = None
        self.shutter: MockShutter | None = None
        self.device = torch.device("cpu")
        self._cache: dict[str, object] = {}
        # (a copy of the gray pattern it was built for, its transmission)
        self._transmission: tuple[np.ndarray, torch.Tensor] | None = None

    def use_device(self, device: torch.device) -> None:
        """Run the physics on ``device`` from now on (the camera's choice)."""
        self.device = device
        self._invalidate()

    def _invalidate(self) -> None:
        """Forget what was built for the devices attached until now."""
        self._cache.clear()
        self._transmission = None

    # -- wiring -----------------------------------------------------------------------------------
    def attach(self, role: str, device: object) -> None:
        if getattr(self, role) is not None and getattr(self, role) is not device:
            raise DeviceError(getattr(device, "name", role), f"the simulated bench already has a {role}")
        setattr(self, role, device)
        self._invalidate()

    def detach(self, role: str, device: object) -> None:
        if getattr(self, role) is device:
            setattr(self, role, None)
            self._invalidate()

    @property
    def geometry(self) -> FourFGeometry:
        slm = self._need("fourier_slm")
        g = slm.grid
        return FourFGeometry(self.optics.wavelength_m, self.optics.f1_m, self.optics.f2_m, g.rows, g.cols, g.pitch_m)

    def _need(self, role: str):  # noqa: ANN202 - returns the attached mock device
        device = getattr(self, role)
        if device is None:
            raise DeviceError("mock camera", f"the simulated bench has no open mock {role}; no light reaches the camera")
        return device

    @property
    def beam_open(self) -> bool:
        return self.shutter is None or self.shutter.beam_open

    # -- physics ------------------------------------------------------------------------------------
    def _static(self) -> dict[str, object]:
        """Geometry-dependent tensors, built once per attached set of devices."""
        if not self._cache:
            geo = self.geometry
            inp, fou, cam = self._need("input_slm"), self._need("fourier_slm"), self._need("camera")
            in_truth, f_truth, pose = inp._truth, fou._truth, cam._truth.pose
            ig, cg = inp.grid, cam.grid
            grid = SimulationGrid.for_devices(geo, ig.rows, ig.cols, ig.pitch_m, cg.rows, cg.cols, cg.pitch_m, pose)
            # The beam at each modulator pixel; laser power is defined over the modulator when fully on.
            y = (np.arange(ig.rows) - (ig.rows - 1) / 2)[:, None] * ig.pitch_m - in_truth.beam_center_m[0]
            x = (np.arange(ig.cols) - (ig.cols - 1) / 2)[None, :] * ig.pitch_m - in_truth.beam_center_m[1]
            if np.isinf(in_truth.beam_waist_m):
                profile = np.ones((ig.rows, ig.cols))
            else:
                profile = np.exp(-2 * (x**2 + y**2) / in_truth.beam_waist_m**2)
            power_per_pixel = in_truth.laser_power_w * profile / profile.sum()
            d = self.device
            self._cache.update(
                spectrum=InputSpectrum(grid, ig.rows, ig.cols, ig.pitch_m).to(d),
                beam=torch.from_numpy(np.sqrt(power_per_pixel)).float().to(d),
                envelope=aperture_envelope(grid, f_truth.fill_factor).to(d),
                defocus=torch.polar(torch.ones(grid.shape), defocus_phase(grid, pose.defocus_m)).to(d),
                grid=camera_sample_grid(grid, cg.rows, cg.cols, cg.pitch_m, pose).to(d),
                area=camera_pixel_area_ratio(geo, cg.pitch_m, pose),
            )
            rows, cols, window_grid = camera_sample_window(grid, cg.rows, cg.cols, cg.pitch_m, pose)
            self._cache["renderer"] = FrameRenderer(
                self._cache["spectrum"], rows, cols, window_grid.to(d), self._cache["area"]  # type: ignore[arg-type]
            )
        return self._cache

    @property
    def simulation_shape(self) -> tuple[int, int]:
        """(rows, cols) of the sub-sampled grid the physics runs on (see labctl.optics.sampling)."""
        return self._static()["spectrum"].grid.shape  # type: ignore[attr-defined]

    def input_field(self, input_gray: np.ndarray) -> torch.Tensor:
        """Field amplitude (√W per pixel) leaving each input-modulator pixel, for gray levels (B, rows_in, cols_in)."""
        s = self._static()
        inp = self._need("input_slm")
        leak = inp._truth.leak_amplitude
        amp = torch.from_numpy(input_gray.astype(np.float32)).to(self.device) / (inp.levels - 1)
        return (leak + (1 - leak) * amp) * s["beam"]  # type: ignore[operator]

    def fourier_transmission(self, fourier_gray: np.ndarray) -> torch.Tensor:
        """Transmission of the Fourier SLM showing ``fourier_gray``, defocus included; built once per
        pattern shown (the camera renders every exposure of one pattern with it)."""
        if self._transmission is not None and np.array_equal(self._transmission[0], fourier_gray):
            return self._transmission[1]
        s = self._static()
        truth = self._need("fourier_slm")._truth
        phase = torch.from_numpy(truth.response.phase(fourier_gray)).float().to(self.device)
        phase = fringing_blur(phase, truth.crosstalk_sigma_px)
        transmission = phase_transmission(phase, s["envelope"]) * s["defocus"]  # type: ignore[arg-type,operator]
        self._transmission = (fourier_gray.copy(), transmission)
        return transmission

    def _realism(self) -> LabRealism | None:
        """The lab-realism light path, when a device has realism on (mock_hw.realism)."""
        s = self._static()
        if "realism" not in s:
            s["realism"] = LabRealism.of(self)
        return s["realism"]  # type: ignore[return-value]

    def camera_power(
        self, input_gray: np.ndarray, fourier_gray: np.ndarray, beam_open: bool,
        start_s: np.ndarray | None = None, exposure_s: float = 0.0,
    ) -> torch.Tensor:
        """Optical power (W) on each camera pixel: (B, cam_rows, cam_cols), on the table's device.
        ``start_s`` (B,) and ``exposure_s``: when each exposure ran (what lab realism's drift, flicker
        and DMD timing depend on; now, by default)."""
        s = self._static()
        cam = self._need("camera")
        if not beam_open:
            return torch.zeros(input_gray.shape[0], cam.grid.rows, cam.grid.cols, device=self.device)
        realism = self._realism()
        if realism is not None:
            start = np.full(input_gray.shape[0], self.clock.now()) if start_s is None else start_s
            with torch.no_grad():
                return realism.camera_power(input_gray, fourier_gray, start, exposure_s)
        with torch.no_grad():  # InputSpectrum.apply → output_intensity → camera sampling, in bulk
            transmission = self.fourier_transmission(fourier_gray)
            return s["renderer"].render(  # type: ignore[attr-defined]
                lambda frames: self.input_field(input_gray[frames]), transmission, frames=input_gray.shape[0]
            )

    def input_power_w(self, input_gray: np.ndarray) -> float:
        """Power leaving the input modulator (what a power meter behind it reads)."""
        realism = self._realism()
        with torch.no_grad():
            if realism is not None:
                return realism.input_power_w(input_gray, self.clock.now())
            return float(self.input_field(input_gray[None]).square().sum())
