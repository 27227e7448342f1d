"""How far the lab bench's input modulator delivers the field amplitude asked of it, shown linearly
(gray = amplitude·(L−1)) and through the table its input-response calibration measured.

For each modulator kind (``--modulators``: the lab bench's DMD, an LC modulator) and seed, the lab
bench (mock_hw/lab_bench.toml, device seeds as in calibration_accuracy.py) has its input response
calibrated; the amplitudes ``linspace(0, 1, 101)`` are converted to gray levels by the linear table
and by the measured one, and each gray level's true field (relative to full on, from the modulator's
hidden truth: a DMD's field averaged over whole PWM periods, an LC cell's |field|) is compared with
the amplitude asked for.

Usage: python benchmarks/input_amplitude.py [--seeds 1 2 3] [--modulators dmd lc] [--threads 1]
Last line: JSON, per modulator the RMS and worst amplitude error, linear and calibrated (means over
seeds), and per-seed figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import tomllib
from pathlib import Path

import numpy as np
import torch

from calibration.run import calibrate_input
from drivers.bench import Bench
from mock_hw.realism.input_modulator import DMDModulation, LCModulation
from mock_hw.truth import reveal_truth

sys.path.insert(0, str(Path(__file__).resolve().parent))

import calibration_accuracy as accuracy  # noqa: E402

LAB = Path(__file__).resolve().parents[1] / "mock_hw" / "lab_bench.toml"
REALISM = {"dmd": {"modulator": "dmd", "pwm_period_s": 6.944e-4}, "lc": {"modulator": "lc"}}


def delivered_field(bench: Bench, gray: np.ndarray) -> np.ndarray:
    """The input modulator's true field amplitude at each gray level, relative to its top level, from
    its hidden truth: a DMD's mirror field averaged over whole PWM periods (plane b shown for
    2^b/(2^n − 1) of the time; an off mirror still sends the leak amplitude), an LC cell's
    |cos(Γ/2)|, an ideal modulator's leak + (1 − leak)·gray/(L − 1)."""
    truth = reveal_truth(bench.input_slm)
    modulator, leak, levels = truth.realism.modulator, truth.leak_amplitude, bench.input_slm.levels
    gray = np.asarray(gray)
    top = np.array([levels - 1])
    if isinstance(modulator, DMDModulation):
        weights = modulator.plane_weights(np.zeros(1), 0.0)[0]  # whole periods

        def mean_field(g: np.ndarray) -> np.ndarray:
            return np.tensordot(weights, leak + (1 - leak) * modulator.planes(g), axes=1)

        return mean_field(gray) / mean_field(top)
    if isinstance(modulator, LCModulation):
        return np.abs(modulator.field(gray, levels)) / np.abs(modulator.field(top, levels))
    return leak + (1 - leak) * gray / (levels - 1)


def one(modulator: str, seed: int, out: Path) -> dict:
    raw = tomllib.loads(LAB.read_text())
    raw["input_slm"]["realism"] = {**raw["input_slm"]["realism"], **REALISM[modulator]}
    if modulator != "dmd":
        raw["input_slm"]["realism"].pop("pwm_period_s", None)
    requested = np.linspace(0, 1, 101)
    with accuracy.bench_for_seed(raw, seed).open() as bench:
        inp = bench.input_slm
        linear = delivered_field(bench, inp.amplitude_table.gray_for_amplitude(requested)) - requested
        calibrate_input(bench, out)  # makes its table active
        calibrated = delivered_field(bench, inp.amplitude_table.gray_for_amplitude(requested)) - requested
    return {"seed": seed, "rms_linear": float(np.sqrt(np.mean(linear**2))), "max_linear": float(np.abs(linear).max()),
            "rms_calibrated": float(np.sqrt(np.mean(calibrated**2))), "max_calibrated": float(np.abs(calibrated).max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--modulators", nargs="+", choices=tuple(REALISM), default=list(REALISM))
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    summary: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for modulator in args.modulators:
            rows = [one(modulator, seed, Path(tmp) / f"{modulator}{seed}") for seed in args.seeds]
            for row in rows:
                print(f"{modulator} seed {row['seed']}: {row}", flush=True)
            summary[modulator] = {k: round(float(np.mean([r[k] for r in rows])), 4) for k in rows[0] if k != "seed"}
            summary[modulator]["per_seed"] = rows
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
