"""Calibration accuracy against the simulator's hidden truth, over several seeds of simulated benches.

    python benchmarks/calibration_accuracy.py [--bench FILE] [--seeds 1 2 3] [--out DIR] [--threads N]

Each seed redraws every device's hidden non-idealities (``--bench``: any bench file, its realism
tables included, e.g. mock_hw/lab_bench.toml). Errors (worst over seeds):
phase_rms_rad: RMS over the whole panel and 256 target phases in [0, 2π) of the true phase of the
gray level the calibrated (regional) table picks, minus the target (mod 2π);
registration_rms_px: RMS over the modulator area (input map) and the measured frequency range
(Fourier map) of where the fitted registration puts a point minus where the bench images it, the
worse of the two;
gain/read-noise relative errors, dark offset error in DN; max_seconds: slowest single calibration
(wall clock; each seed's row also gives every calibration's seconds and process CPU seconds, which
say more on a machine shared with other jobs);
input_leak_rel_err: the input modulator's dark-pixel field (``leak_amplitude``, calibration/input_response.py)
over the true one (the hidden leak; a lab-realism modulator's true gray-0 field over its top level's),
less 1; the input response is calibrated first, as ``labctl calibrate all`` does, so the later steps
show their patterns through its table;
fringing_sigma_err_px, fill_factor_err: the Fourier SLM's fringing width (SLM px) and fill factor as
calibration/slm_fringing.py fits them, minus the hidden Gaussian width and fill factor (each row gives
both; a lab-realism bench's sub-pixel fringing is another model, so its fitted Gaussian width is
reported but not charged);
phase_rms_rad_interferometric: phase_rms_rad of the split-screen interferometric method, run after the
others (an extra figure; the diffraction method stays the one behind phase_rms_rad). It measures the
response at the panel centre and its tilt, not a curvature of it across the panel, so a curved panel
leaves it above 0.05 rad (seed 2: 0.056 default bench, 0.057 lab bench; calibration/slm_interferometric.py).

What "true" means on a lab-realism bench (mock_hw/realism), i.e. what each calibration is held to:
- phase: the liquid crystal's gray→phase response with its regional variation, times the retardance
  drift reached on the bench's clock when the error is taken (right after the calibration). Left out:
  the per-frame flicker (zero-mean noise around that response; a table cannot follow it) and the
  panel's surface bow (a gray-independent phase, the same for every gray level: a gray→phase table
  cannot correct it; it is a wavefront error like the lens aberrations, for twin refinement or a
  flatness correction). Sub-pixel fringing does not enter either: a uniform target has no edges.
- registration: the camera pixel that sees each point, through the relay's radial lens distortion
  and the sensor's pose; an affine-only registration is charged its distortion error. The truth is
  the geometric image point: the spots' centroids, which the fit sees, also carry the lens
  aberrations' (shift-invariant) centroid offset, which therefore counts as error.
- camera: the linear EMVA sensor's gain, read noise and dark offset; the soft saturation near full
  well is a model error the photon-transfer fit must stay clear of, not a parameter compared here.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tomllib
from importlib import resources
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from calibration.active import phase_table_from_record  # noqa: E402
from calibration.records import load_record  # noqa: E402
from calibration.registration import Registration  # noqa: E402
from calibration.run import calibrate_camera, calibrate_input, calibrate_registration, calibrate_slm  # noqa: E402
from drivers.bench import Bench, BenchSpec  # noqa: E402
from labctl.optics.geometry import FourFGeometry  # noqa: E402
from mock_hw.slm import optical_table  # noqa: E402
from mock_hw.truth import reveal_truth  # noqa: E402


def _value(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else json.dumps(value)


def _toml(raw: dict, prefix: str = "") -> str:
    """TOML text of a parsed bench: each table's plain keys under its header, then its sub-tables
    (``[camera.realism]``) as their own dotted headers."""
    lines = []
    for table, values in raw.items():
        name = f"{prefix}{table}"
        lines.append(f"[{name}]")
        nested = {k: v for k, v in values.items() if isinstance(v, dict)}
        for key, value in values.items():
            if key not in nested:
                lines.append(f"{key} = {_value(value)}")
        lines.append("")
        if nested:
            lines.append(_toml(nested, prefix=f"{name}."))
    return "\n".join(lines)


def bench_for_seed(base: dict, seed: int) -> BenchSpec:
    raw = {k: dict(v) for k, v in base.items() if k != "calibration"}
    for i, role in enumerate(("input_slm", "fourier_slm", "camera")):
        raw[role]["seed"] = 100 * seed + i
    text = _toml(raw)
    if tomllib.loads(text) != raw:  # the writer must round-trip the bench exactly
        raise ValueError("benchmark bench did not survive writing as TOML")
    return BenchSpec.from_toml(text, source=f"<benchmark bench, seed {seed}>")


def true_phase(bench: Bench, gray: np.ndarray) -> np.ndarray:
    """The phase the Fourier SLM's liquid crystal gives ``gray`` now: its gray→phase response (regional
    variation included) scaled by the retardance drift reached on the bench's clock, where the bench
    has one. Per-frame flicker (zero-mean) and the gray-independent surface bow are left out: no
    gray→phase table can correct them (see the module docstring)."""
    slm = bench.fourier_slm
    truth = reveal_truth(slm)
    phase = truth.response.phase(gray)
    drift = getattr(truth.realism, "phase_drift", None)
    if drift is not None:
        phase = phase * (1 + float(drift.at(optical_table(bench.context).clock.now())))
    return phase


def phase_error(bench: Bench, record_path: Path) -> float:
    slm = bench.fourier_slm
    table = phase_table_from_record(load_record(record_path))
    errors = []
    for theta in np.arange(256) * 2 * np.pi / 256:
        gray = table.gray_for_phase(np.full(slm.grid.shape, theta))
        errors.append(np.angle(np.exp(1j * (true_phase(bench, gray) - theta))))
    return float(np.sqrt(np.mean(np.square(errors))))


def true_camera_px(bench: Bench, x_m: np.ndarray, y_m: np.ndarray) -> np.ndarray:
    """Camera pixel (col, row) that sees the output-plane point (x, y) (metres from the optical axis):
    through the relay's radial distortion where the bench has one, then the sensor's pose. (A pixel at
    output-plane position p under the pose sees the point ``undistort(p)``, so it sees X where
    ``p = distort(X)``.)"""
    truth = reveal_truth(bench.camera)
    distortion = getattr(truth.realism, "distortion", None)
    if distortion is not None:
        x_m, y_m = distortion.distort_m(x_m, y_m)
    pose, c = truth.pose, bench.camera.grid
    uv = (np.stack([x_m, y_m], -1) - [pose.shift_x_m, pose.shift_y_m]) @ np.linalg.inv(pose.matrix()).T
    return uv / c.pitch_m + [(c.cols - 1) / 2, (c.rows - 1) / 2]


def registration_error(bench: Bench, record_path: Path) -> float:
    """The worse of the input map's and the Fourier map's RMS distance (camera px) between where the
    fitted registration puts points and where the bench images them (distortion included)."""
    record = load_record(record_path)
    return map_error(bench, Registration.from_record(record), record.arrays["fourier_k"])


def map_error(bench: Bench, fit: Registration, k: np.ndarray) -> float:
    """:func:`registration_error` of the maps ``fit``, the Fourier map over the range of frequencies ``k``."""
    o, f, i = bench.spec.optics, bench.fourier_slm.grid, bench.input_slm.grid
    geo = FourFGeometry(o.wavelength_m, o.f1_m, o.f2_m, f.rows, f.cols, f.pitch_m)
    mag = geo.magnification

    def output_m(pts: np.ndarray) -> np.ndarray:  # input px (col, row) → output plane (4f inverts)
        return -mag * (pts - [(i.cols - 1) / 2, (i.rows - 1) / 2]) * i.pitch_m

    pts = np.stack(np.meshgrid(np.linspace(0, i.cols - 1, 25), np.linspace(0, i.rows - 1, 25)), -1).reshape(-1, 2)
    d_in = fit.input_points_to_camera(pts) - true_camera_px(bench, *output_m(pts).T)
    # Fourier map: the point source's image shifted by λ·f₂·k in the output plane
    source = output_m(np.array([[i.cols // 2, i.rows // 2]]))[0]
    dy, dx = geo.output_spacing_m
    ks = np.stack(np.meshgrid(np.linspace(k[:, 0].min(), k[:, 0].max(), 15), np.linspace(k[:, 1].min(), k[:, 1].max(), 15)), -1).reshape(-1, 2)
    spot = source + ks * [dx, dy]
    d_f = fit.fourier_points_to_camera(ks) - true_camera_px(bench, spot[:, 0], spot[:, 1])
    rms = lambda d: float(np.sqrt(np.mean(np.sum(d**2, axis=1))))  # noqa: E731
    return max(rms(d_in), rms(d_f))


def true_dark_field(bench: Bench) -> float:
    """The input modulator's field at gray 0 over its top level's, from its hidden truth."""
    truth = reveal_truth(bench.input_slm)
    if truth.realism is None:
        return float(truth.leak_amplitude)  # field leak + (1 − leak)·gray/(L − 1): 1 at the top
    from input_amplitude import delivered_field

    return float(delivered_field(bench, np.array([0]))[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", type=Path, default=None, help="base bench file (default: the embedded mock bench)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--out", type=Path, default=None, help="keep the records here (default: a temporary folder)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice; 1 on a machine shared with other jobs)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    text = args.bench.read_text() if args.bench else resources.files("mock_hw").joinpath("default_bench.toml").read_text()
    base = tomllib.loads(text)
    worst = {"phase_rms_rad": 0.0, "registration_rms_px": 0.0, "gain_rel_err": 0.0, "read_noise_rel_err": 0.0,
             "dark_offset_err_dn": 0.0, "max_seconds": 0.0, "phase_rms_rad_interferometric": 0.0,
             "fringing_sigma_err_px": 0.0, "fill_factor_err": 0.0, "input_leak_rel_err": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            out = (args.out or Path(tmp)) / f"seed{seed}"
            with bench_for_seed(base, seed).open() as bench:
                times, cpu = {}, {}
                for kind, fn in (("input_response", calibrate_input), ("slm_phase", calibrate_slm), ("camera", calibrate_camera), ("registration", calibrate_registration)):
                    t0, c0 = time.perf_counter(), time.process_time()
                    path = fn(bench, out)
                    times[kind], cpu[kind] = time.perf_counter() - t0, time.process_time() - c0
                    if kind == "input_response":
                        leak, leak_true = load_record(path).params["leak_amplitude"], true_dark_field(bench)
                    elif kind == "slm_phase":
                        phase = phase_error(bench, path)
                        panel, truth = load_record(path).params, reveal_truth(bench.fourier_slm)
                        subpixel = truth.realism is not None and truth.realism.fringing is not None
                        fringing = {"fringing_sigma_px": round(panel["fringing_sigma_px"], 4),
                                    "fringing_sigma_true_px": None if subpixel else round(truth.crosstalk_sigma_px, 4),
                                    "fill_factor": round(panel["fill_factor"], 4), "fill_factor_true": round(truth.fill_factor, 4)}
                        sigma_err = 0.0 if subpixel else abs(panel["fringing_sigma_px"] - truth.crosstalk_sigma_px)
                        fill_err = abs(panel["fill_factor"] - truth.fill_factor)
                    elif kind == "camera":
                        cam = load_record(path).params
                        sensor = reveal_truth(bench.camera).sensor
                        gain = abs(cam["gain_dn_per_e"] / sensor.gain_dn_per_e - 1)
                        noise = abs(cam["read_noise_e"] / sensor.read_noise_e - 1)
                        offset = abs(cam["dark_offset_dn"] - sensor.dark_offset_dn)
                    else:
                        reg = registration_error(bench, path)
                t0, c0 = time.perf_counter(), time.process_time()
                interferometric = phase_error(bench, calibrate_slm(bench, out / "interferometric", method="interferometric"))
                times["slm_phase_interferometric"] = time.perf_counter() - t0
                cpu["slm_phase_interferometric"] = time.process_time() - c0
            row = {"seed": seed, "phase_rms_rad": phase, "registration_rms_px": reg, "gain_rel_err": gain,
                   "read_noise_rel_err": noise, "dark_offset_err_dn": offset, "max_seconds": max(times.values()),
                   "phase_rms_rad_interferometric": interferometric, "fringing_sigma_err_px": sigma_err,
                   "fill_factor_err": fill_err, **fringing, "input_leak_rel_err": abs(leak / leak_true - 1),
                   "input_leak": round(leak, 5), "input_leak_true": round(leak_true, 5),
                   "seconds": {k: round(v, 2) for k, v in times.items()},
                   "cpu_seconds": {k: round(v, 2) for k, v in cpu.items()}}
            print(json.dumps(row), flush=True)
            for key in worst:
                worst[key] = max(worst[key], row[key])
    print(json.dumps({k: round(v, 5) for k, v in worst.items()}))


if __name__ == "__main__":
    main()
