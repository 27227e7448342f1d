"""Hidden ground truth of the simulated bench: the non-idealities a real bench has, drawn from a
seed, kept inside the mock devices. Calibration and fine-tuning must recover them from frames.

Only :func:`reveal_truth` — meant for tests and benchmarks — hands them out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labctl.optics.geometry import CameraPose

TWO_PI = 2.0 * np.pi

# Streams of the seeded generator, so each device's truth is independent of the others'.
_STREAM_PHASE, _STREAM_INPUT, _STREAM_SENSOR, _STREAM_POSE = 1, 2, 3, 4


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), stream])


@dataclass(frozen=True)
class PhaseResponseTruth:
    """Gray level → phase of a Fourier SLM.

    φ(g, x, y) = φ_max · s(x, y) · r(g/(L−1)), r(t) = t^γ · (1 + b·(1−t)), monotone for the drawn
    ranges; s(x, y) = 1 + tilt·(x, y) + curvature·(x²+y²) over the panel in [−1, 1]² (regional
    variation). φ_max is not exactly 2π (LC panels are made to reach a little more).
    """

    bit_depth: int
    phi_max_rad: float
    gamma: float
    bow: float
    tilt_x: float
    tilt_y: float
    curvature: float

    def curve(self, gray: np.ndarray) -> np.ndarray:
        """Panel-centre phase for gray levels (no spatial variation)."""
        t = np.asarray(gray, dtype=np.float64) / (2**self.bit_depth - 1)
        return self.phi_max_rad * t**self.gamma * (1 + self.bow * (1 - t))

    def scale_map(self, rows: int, cols: int) -> np.ndarray:
        y = np.linspace(-1, 1, rows)[:, None]
        x = np.linspace(-1, 1, cols)[None, :]
        return 1 + self.tilt_x * x + self.tilt_y * y + self.curvature * (x**2 + y**2)

    def phase(self, gray: np.ndarray) -> np.ndarray:
        """Phase of each pixel for a gray-level pattern (..., rows, cols)."""
        rows, cols = gray.shape[-2:]
        return self.curve(gray) * self.scale_map(rows, cols)


@dataclass(frozen=True)
class FourierSLMTruth:
    response: PhaseResponseTruth
    crosstalk_sigma_px: float  # fringing field
    fill_factor: float  # modulated fraction of the pixel area
    realism: object | None = None  # mock_hw.realism.devices.FourierRealismTruth on a lab-realism bench


@dataclass(frozen=True)
class InputSLMTruth:
    """Input amplitude modulator and the laser that lights it."""

    leak_amplitude: float  # field amplitude at gray 0 (finite contrast)
    laser_power_w: float
    beam_waist_m: float  # 1/e² intensity radius of the Gaussian beam on the modulator
    beam_center_m: tuple[float, float]  # (y, x) offset of the beam from the optical axis
    realism: object | None = None  # mock_hw.realism.devices.InputRealismTruth on a lab-realism bench


@dataclass(frozen=True)
class SensorTruth:
    """Camera sensor in EMVA 1288 terms."""

    bit_depth: int
    quantum_efficiency: float
    gain_dn_per_e: float  # overall system gain K at gain setting 1
    read_noise_e: float
    dark_offset_dn: float
    dark_current_e_per_s: float
    full_well_e: float
    prnu: np.ndarray  # per-pixel response non-uniformity (multiplier, mean 1)
    dark_current_map: np.ndarray  # per-pixel dark-current multiplier (hot pixels ≫ 1)

    @property
    def hot_pixels(self) -> np.ndarray:
        return self.dark_current_map > 10


@dataclass(frozen=True)
class CameraTruth:
    sensor: SensorTruth
    pose: CameraPose  # misalignment of the sensor in the output plane, and defocus
    realism: object | None = None  # mock_hw.realism.devices.CameraRealismTruth on a lab-realism bench


def draw_fourier_slm_truth(seed: int, bit_depth: int, ideal: bool = False) -> FourierSLMTruth:
    if ideal:
        response = PhaseResponseTruth(bit_depth, TWO_PI * (2**bit_depth - 1) / 2**bit_depth, 1.0, 0.0, 0.0, 0.0, 0.0)
        return FourierSLMTruth(response, crosstalk_sigma_px=0.0, fill_factor=1.0)
    rng = _rng(seed, _STREAM_PHASE)
    response = PhaseResponseTruth(
        bit_depth=bit_depth,
        phi_max_rad=TWO_PI * rng.uniform(1.04, 1.25),
        gamma=rng.uniform(0.85, 1.2),
        bow=rng.uniform(-0.3, 0.3),
        tilt_x=rng.uniform(-0.03, 0.03),
        tilt_y=rng.uniform(-0.03, 0.03),
        curvature=rng.uniform(-0.03, 0.03),
    )
    return FourierSLMTruth(response, crosstalk_sigma_px=rng.uniform(0.35, 0.7), fill_factor=rng.uniform(0.9, 0.97))


def draw_input_slm_truth(seed: int, aperture_m: float, laser_power_w: float, ideal: bool = False) -> InputSLMTruth:
    if ideal:
        return InputSLMTruth(0.0, laser_power_w, beam_waist_m=np.inf, beam_center_m=(0.0, 0.0))
    rng = _rng(seed, _STREAM_INPUT)
    return InputSLMTruth(
        leak_amplitude=rng.uniform(0.01, 0.04),
        laser_power_w=laser_power_w * rng.uniform(0.85, 1.15),
        beam_waist_m=aperture_m * rng.uniform(1.2, 2.0),
        beam_center_m=tuple(aperture_m * rng.uniform(-0.05, 0.05, size=2)),
    )


def draw_camera_truth(
    seed: int,
    rows: int,
    cols: int,
    pitch_m: float,
    bit_depth: int,
    *,
    ideal: bool = False,
    defocus_m: float = 0.0,
    misalignment: float = 1.0,
) -> CameraTruth:
    rng = _rng(seed, _STREAM_SENSOR)
    full_scale = 2**bit_depth - 1
    full_well = rng.uniform(9000, 15000)
    # K chosen so that the ADC saturates a little below the full well, as on real sensors.
    gain = full_scale / full_well * rng.uniform(1.05, 1.3)
    sensor = SensorTruth(
        bit_depth=bit_depth,
        quantum_efficiency=rng.uniform(0.5, 0.75),
        gain_dn_per_e=gain,
        read_noise_e=rng.uniform(2.0, 7.0),
        dark_offset_dn=rng.uniform(0.01, 0.04) * full_scale,
        dark_current_e_per_s=rng.uniform(5.0, 50.0),
        full_well_e=full_well,
        prnu=1 + rng.normal(0, 0.01, (rows, cols)) if not ideal else np.ones((rows, cols)),
        dark_current_map=np.where(rng.random((rows, cols)) < 1e-3, rng.uniform(50, 500, (rows, cols)), 1.0),
    )
    if ideal:
        return CameraTruth(sensor, CameraPose(defocus_m=defocus_m))
    prng = _rng(seed, _STREAM_POSE)
    pose = CameraPose(
        shift_x_m=misalignment * prng.uniform(-4, 4) * pitch_m,
        shift_y_m=misalignment * prng.uniform(-4, 4) * pitch_m,
        rotation_rad=misalignment * np.deg2rad(prng.uniform(-1.5, 1.5)),
        scale=1 + misalignment * prng.uniform(-0.03, 0.03),
        defocus_m=defocus_m,
    )
    return CameraTruth(sensor, pose)


def reveal_truth(device: object) -> object:
    """The hidden ground truth of a mock device. For tests and benchmarks only."""
    try:
        return device._truth  # type: ignore[attr-defined]
    except AttributeError:
        raise TypeError(f"{device!r} is not a simulated device; it has no ground truth") from None
