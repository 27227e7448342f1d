"""Frames per second of the simulated bench at 256×256 (Fourier SLM, input modulator and camera),
for batch 1 (software trigger, one frame at a time) and batch 64 (hardware-triggered sequence).

This measures the simulator's compute rate: device timing runs on the virtual clock.
Usage: python benchmarks/mock_bench.py [--seconds S]. Last line: JSON with fps_batch1, fps_batch64.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from drivers.bench import BenchSpec

BENCH = """
[optics]
wavelength_m = 532e-9
f1_m = 0.1
f2_m = 0.1
[input_slm]
driver = "mock"
rows = 256
cols = 256
pitch_m = 8e-6
[fourier_slm]
driver = "mock"
rows = 256
cols = 256
pitch_m = 8e-6
[camera]
driver = "mock"
rows = 256
cols = 256
pitch_m = 26e-6
"""


def measure(batch: int, seconds: float) -> float:
    with BenchSpec.from_toml(BENCH, source="<benchmark bench>").open() as bench:
        inp, cam = bench.input_slm, bench.camera
        bench.fourier_slm.write_phase(np.random.default_rng(0).uniform(0, 2 * np.pi, bench.fourier_slm.grid.shape))
        images = np.random.default_rng(1).random((batch, *inp.grid.shape))
        if batch > 1:
            cam.trigger_source = "hardware"

        def one_round() -> None:
            if batch == 1:
                inp.write_amplitude(images[0])
                cam.capture()
            else:
                inp.write_amplitude(images)
                cam.read_frames(batch)

        one_round()  # warm-up (builds the geometry tensors)
        frames, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            one_round()
            frames += batch
        return frames / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per batch size")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    fps1 = measure(1, args.seconds)
    print(f"batch 1:  {fps1:8.1f} frames/s")
    fps64 = measure(64, args.seconds)
    print(f"batch 64: {fps64:8.1f} frames/s")
    print(json.dumps({"fps_batch1": round(fps1, 1), "fps_batch64": round(fps64, 1)}))


if __name__ == "__main__":
    main()
