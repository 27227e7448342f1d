"""The drift monitor's shape test on a steady bench: how much one capture of the references leaves
beyond the expected capture noise (``excess``), and what the re-capture rule (labctl/runner/drift.py:
a check beyond ``residual_limit`` is captured again at once, and stops the run only on a channel both
captures leave beyond it) makes of it.

A run with a check before every batch, the limit out of the way, and every check's references
captured once more right after it; the start pair and every capture are kept and replayed through
``fit_response`` against the baseline, per capture the maximum excess over channels.

- ``--bench small``: the tests' small noisy bench (tests/test_runner_drift.py: camera noise, a DMD
  input, the SLM's flicker), 4-channel optics-aware student trained as the tests' fixture does;
- ``--bench lab``: mock_hw/lab_bench.toml with its drifts removed, calibrated (``calibrate_all``),
  a 16-channel student (1 epoch on 256 digits: the readout's shape is what matters, not accuracy).

How far one capture strays depends on where the start pair falls in the PWM's beat with the frame
timing: ``--scale-inputs`` (the frames before it) moves it.

Usage: python benchmarks/drift_shape.py [--bench small|lab] [--batch 4] [--limit 240] [--scale-inputs 64] [--out DIR]
Last line: JSON with the distribution before (one capture) and after (confirmed by the re-capture).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import labctl.runner.drift as drift  # noqa: E402
from calibration.run import calibrate_all  # noqa: E402
from drivers.bench import BenchSpec  # noqa: E402
from labctl.data import load_dataset  # noqa: E402
from labctl.masks.export import export_masks  # noqa: E402
from labctl.models.bench_layout import layout_for_bench  # noqa: E402
from labctl.runner.drift_settings import DriftSettings  # noqa: E402
from labctl.runner.session import RunOptions, run_masks  # noqa: E402
from labctl.training.loop import TrainSettings  # noqa: E402
from labctl.training.train import train_student  # noqa: E402

LIMIT = DriftSettings().residual_limit


def _benches(which: str, work: Path) -> tuple[BenchSpec, BenchSpec, int, TrainSettings]:
    """(the bench the student's masks are exported for, the bench run, channels, training)."""
    if which == "small":
        from tests.conftest import bench_toml
        from tests.test_runner_drift import NOISY_REALISM, STEADY
        return (BenchSpec.from_toml(bench_toml(ideal=True, noise=False) + STEADY),
                BenchSpec.from_toml(bench_toml(ideal=True, noise=True) + NOISY_REALISM), 4,
                TrainSettings(epochs=3, batch_size=64, lr=1e-2, train_limit=600))
    text = re.sub(r"^(power_drift|pointing_drift_m|phase_drift)\s*=.*$", "", (ROOT / "mock_hw" / "lab_bench.toml").read_text(),
                  flags=re.M)
    (work / "bench.toml").write_text(text)
    calibrate_all(BenchSpec.from_file(work / "bench.toml"), work / "cal")
    spec = BenchSpec.from_file(work / "cal" / "bench.toml")
    return spec, spec, 16, TrainSettings(epochs=1, batch_size=64, lr=1e-2, train_limit=256)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", choices=("small", "lab"), default="small")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--limit", type=int, default=240)
    parser.add_argument("--scale-inputs", type=int, default=64, help="readout-scale inputs: how many frames precede the baseline")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    work = args.out or Path(tempfile.mkdtemp(prefix="drift_shape_"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    export_spec, spec, channels, train = _benches(args.bench, work)
    data = load_dataset("digits", size=16)
    student = train_student(data, None, train, kind="optics_aware", out_dir=work / "student",
                            layout=layout_for_bench(export_spec, 16, channels))
    export_masks(student.path, export_spec, work / "masks.h5", overwrite=True)

    kept: dict[str, list] = {"start": [], "first": [], "again": []}
    plain_of, plain_check = drift.Baseline.of.__func__, drift.DriftMonitor.check  # type: ignore[attr-defined]

    def baseline_of(cls, *captures, **options):  # noqa: ANN001, ANN202
        kept["start"].append(tuple(c.clone() for c in captures))
        return plain_of(cls, *captures, **options)

    def fit_response(baseline, current):  # noqa: ANN001, ANN202
        kept["first"].append(current.clone())
        return plain_fit(baseline, current)

    def check(self, first_index, inputs_done):  # noqa: ANN001, ANN202
        done = plain_check(self, first_index, inputs_done)  # its capture, then at once the re-capture the rule makes
        kept["again"].append(self._processor.readout(self._capture().data).clone())
        return done

    plain_fit = drift.fit_response
    drift.Baseline.of = classmethod(baseline_of)  # type: ignore[method-assign]
    drift.DriftMonitor.check = check  # type: ignore[method-assign]
    drift.fit_response = fit_response
    (work / "run.h5").unlink(missing_ok=True)
    run_masks(spec, work / "masks.h5", data, work / "run.h5",
              options=RunOptions(batch_size=args.batch, limit=args.limit, scale_inputs=args.scale_inputs,
                                 drift=DriftSettings(every_batches=1, residual_limit=1e9)))
    base = plain_of(drift.Baseline, *kept["start"][0])
    first = np.array([plain_fit(base, c).excess for c in kept["first"]])  # (checks, C)
    again = np.array([plain_fit(base, c).excess for c in kept["again"]])
    one, confirmed = first.max(axis=1), np.minimum(first, again).max(axis=1)
    mean_residual = np.array([plain_fit(base, c).residual.mean() for c in kept["first"]])
    pct = lambda v: [round(100 * float(x), 2) for x in np.percentile(v, [50, 90, 100])]  # noqa: E731
    print(json.dumps({
        "bench": args.bench, "channels": channels, "batch": args.batch, "scale_inputs": args.scale_inputs, "checks": int(one.size),
        "one_capture_excess_pct_median_p90_max": pct(one), "one_capture_beyond_limit": int((one > LIMIT).sum()),
        "recapture_excess_pct_max": round(100 * float(again.max()), 2),
        "corr_capture_recapture": round(float(np.corrcoef(one, again.max(axis=1))[0, 1]), 2),
        "lag1_autocorr_mean_residual": round(float(np.corrcoef(mean_residual[:-1], mean_residual[1:])[0, 1]), 2),
        "confirmed_excess_pct_median_p90_max": pct(confirmed), "confirmed_beyond_limit": int((confirmed > LIMIT).sum()),
        "limit_pct": 100 * LIMIT, "seconds": round(time.time() - t0, 1), "out": str(work),
    }))


if __name__ == "__main__":
    main()
