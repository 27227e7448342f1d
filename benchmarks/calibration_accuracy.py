"""Calibration accuracy against the simulator's hidden truth, over several seeds of simulated benches.

    python benchmarks/calibration_accuracy.py [--bench FILE] [--seeds 1 2 3] [--out DIR]

Each seed redraws every device's hidden non-idealities. Errors (worst over seeds):
phase_rms_rad: RMS over the whole panel and 256 target phases in [0, 2π) of the true phase of the
gray level the calibrated (regional) table picks, minus the target (mod 2π);
registration_rms_px: RMS over the modulator area (input map) and the measured frequency range
(Fourier map) of the fitted affine minus the true one, the worse of the two;
gain/read-noise relative errors, dark offset error in DN; max_seconds: slowest single calibration;
phase_rms_rad_interferometric: phase_rms_rad of the split-screen interferometric method, run after the
others (an extra figure; the diffraction method stays the one behind phase_rms_rad).
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
from calibration.run import calibrate_camera, calibrate_registration, calibrate_slm  # noqa: E402
from drivers.bench import Bench, BenchSpec  # noqa: E402
from labctl.optics.geometry import FourFGeometry, input_to_camera_affine  # noqa: E402
from mock_hw.truth import reveal_truth  # noqa: E402


def _toml(raw: dict) -> str:
    lines = []
    for table, values in raw.items():
        lines.append(f"[{table}]")
        for key, value in values.items():
            lines.append(f"{key} = {json.dumps(value) if not isinstance(value, bool) else str(value).lower()}")
        lines.append("")
    return "\n".join(lines)


def bench_for_seed(base: dict, seed: int) -> BenchSpec:
    raw = {k: dict(v) for k, v in base.items() if k != "calibration"}
    for i, role in enumerate(("input_slm", "fourier_slm", "camera")):
        raw[role]["seed"] = 100 * seed + i
    return BenchSpec.from_toml(_toml(raw), source=f"<benchmark bench, seed {seed}>")


def phase_error(bench: Bench, record_path: Path) -> float:
    slm = bench.fourier_slm
    truth = reveal_truth(slm).response
    table = phase_table_from_record(load_record(record_path))
    errors = []
    for theta in np.arange(256) * 2 * np.pi / 256:
        gray = table.gray_for_phase(np.full(slm.grid.shape, theta))
        errors.append(np.angle(np.exp(1j * (truth.phase(gray) - theta))))
    return float(np.sqrt(np.mean(np.square(errors))))


def registration_error(bench: Bench, record_path: Path) -> float:
    rec = load_record(record_path)
    o, f, i, c = bench.spec.optics, bench.fourier_slm.grid, bench.input_slm.grid, bench.camera.grid
    pose = reveal_truth(bench.camera).pose
    geo = FourFGeometry(o.wavelength_m, o.f1_m, o.f2_m, f.rows, f.cols, f.pitch_m)
    true_in = input_to_camera_affine(geo, i.rows, i.cols, i.pitch_m, c.rows, c.cols, c.pitch_m, pose)
    pts = np.stack(np.meshgrid(np.linspace(0, i.cols - 1, 25), np.linspace(0, i.rows - 1, 25)), -1).reshape(-1, 2)
    fit_in = np.asarray(rec.params["input_to_camera"])
    d_in = pts @ (fit_in[:, :2] - true_in[:, :2]).T + (fit_in[:, 2] - true_in[:, 2])
    # Fourier map: the point source's image plus the output shift λ·f₂·k seen through the inverse pose
    source = true_in @ np.array([i.cols // 2, i.rows // 2, 1.0])
    dy, dx = geo.output_spacing_m
    lin = np.linalg.inv(pose.matrix()) @ np.diag([dx, dy]) / c.pitch_m
    k = rec.arrays["fourier_k"]
    ks = np.stack(np.meshgrid(np.linspace(k[:, 0].min(), k[:, 0].max(), 15), np.linspace(k[:, 1].min(), k[:, 1].max(), 15)), -1).reshape(-1, 2)
    fit_f = np.asarray(rec.params["fourier_to_camera"])
    d_f = ks @ fit_f[:, :2].T + fit_f[:, 2] - (ks @ lin.T + source)
    rms = lambda d: float(np.sqrt(np.mean(np.sum(d**2, axis=1))))  # noqa: E731
    return max(rms(d_in), rms(d_f))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", type=Path, default=None, help="base bench file (default: the embedded mock bench)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--out", type=Path, default=None, help="keep the records here (default: a temporary folder)")
    args = parser.parse_args()
    text = args.bench.read_text() if args.bench else resources.files("mock_hw").joinpath("default_bench.toml").read_text()
    base = tomllib.loads(text)
    worst = {"phase_rms_rad": 0.0, "registration_rms_px": 0.0, "gain_rel_err": 0.0, "read_noise_rel_err": 0.0,
             "dark_offset_err_dn": 0.0, "max_seconds": 0.0, "phase_rms_rad_interferometric": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            out = (args.out or Path(tmp)) / f"seed{seed}"
            with bench_for_seed(base, seed).open() as bench:
                times = {}
                for kind, fn in (("slm_phase", calibrate_slm), ("camera", calibrate_camera), ("registration", calibrate_registration)):
                    t0 = time.perf_counter()
                    path = fn(bench, out)
                    times[kind] = time.perf_counter() - t0
                    if kind == "slm_phase":
                        phase = phase_error(bench, path)
                    elif kind == "camera":
                        cam = load_record(path).params
                        sensor = reveal_truth(bench.camera).sensor
                        gain = abs(cam["gain_dn_per_e"] / sensor.gain_dn_per_e - 1)
                        noise = abs(cam["read_noise_e"] / sensor.read_noise_e - 1)
                        offset = abs(cam["dark_offset_dn"] - sensor.dark_offset_dn)
                    else:
                        reg = registration_error(bench, path)
                t0 = time.perf_counter()
                interferometric = phase_error(bench, calibrate_slm(bench, out / "interferometric", method="interferometric"))
                times["slm_phase_interferometric"] = time.perf_counter() - t0
            row = {"seed": seed, "phase_rms_rad": phase, "registration_rms_px": reg, "gain_rel_err": gain,
                   "read_noise_rel_err": noise, "dark_offset_err_dn": offset, "max_seconds": max(times.values()),
                   "phase_rms_rad_interferometric": interferometric,
                   "seconds": {k: round(v, 2) for k, v in times.items()}}
            print(json.dumps(row), flush=True)
            for key in worst:
                worst[key] = max(worst[key], row[key])
    print(json.dumps({k: round(v, 5) for k, v in worst.items()}))


if __name__ == "__main__":
    main()
