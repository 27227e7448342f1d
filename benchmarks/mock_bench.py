"""Frames per second of a simulated bench, for batch 1 (software trigger, one frame at a time) and
larger batches (hardware-triggered sequences), with the physics on the chosen torch device; and,
measured in the same run at the same batch, the device's FFT floor: frames/s if a frame cost nothing
but two forward complex64 FFTs (the 4f system's two lenses), ``batch`` frames at a time.

"The same size" is the **simulation grid**: the sub-sampled Fourier plane the simulator's FFTs
really run on, finer than the SLM so that the 4f convolution is linear and the pixel aperture is
right (:mod:`labctl.optics.sampling`; 360×360 for the default bench's 256×256 SLM). That floor is
``fft_floor_fps_batchN`` and the ratio ``floor_ratio_batchN`` is fps over it. The floor at the
Fourier SLM's own grid (one sample per pixel, what a circular, aliased model would cost) is
reported too, as ``fft_floor_slm_grid_fps_batchN``: (360/256)² ≈ 2 times the samples, so about
2.3 times faster at batch 64.

The default bench is the one below: 256×256 input modulator, Fourier SLM and camera, a random phase
mask and random images. ``--bench FILE`` measures a bench file's simulated devices instead (e.g.
``mock_hw/lab_bench.toml``, whose lab realism costs extra work per frame). This measures the
simulator's compute rate: device timing runs on the virtual clock. On a shared machine, compare
ratios (measured side by side), not fps across runs, and pin ``--threads 1``: the simulator renders
its many small CPU steps on one thread (:func:`labctl.optics.render.one_cpu_thread`), while the
floor's FFTs use torch's threads, and split over threads on busy cores every FFT can wait at a
barrier for a thread the scheduler set aside (two 360×360 FFTs at batch 1 measured at 22–33 frames/s
on 2 threads of 2 busy cores, 2,200 on one thread).

Usage: python benchmarks/mock_bench.py [--seconds S] [--batches 1,64] [--device auto|cpu|cuda[:N]]
[--bench FILE] [--threads N].
Last line: JSON with bench, device, threads, sim_grid, and per batch size N: fps_batchN,
fft_floor_fps_batchN (at the simulation grid), fft_floor_slm_grid_fps_batchN (at the Fourier SLM's
grid) and floor_ratio_batchN (fps_batchN / fft_floor_fps_batchN).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from drivers.bench import BenchSpec  # noqa: E402
from labctl.bench_device import simulated_on  # noqa: E402
from labctl.device import DEVICE_CHOICES, DeviceUnavailable, resolve_device  # noqa: E402
from labctl_errors import LabctlError  # noqa: E402
from mock_hw.slm import optical_table  # noqa: E402

SIDE = 256
BENCH = f"""
[optics]
wavelength_m = 532e-9
f1_m = 0.1
f2_m = 0.1
[input_slm]
driver = "mock"
rows = {SIDE}
cols = {SIDE}
pitch_m = 8e-6
[fourier_slm]
driver = "mock"
rows = {SIDE}
cols = {SIDE}
pitch_m = 8e-6
[camera]
driver = "mock"
rows = {SIDE}
cols = {SIDE}
pitch_m = 26e-6
"""


def load_bench(path: Path | None) -> BenchSpec:
    """The bench to measure: ``path``'s, or the default one above."""
    return BenchSpec.from_toml(BENCH, source="<benchmark bench>") if path is None else BenchSpec.from_file(path)


def simulation_grid(spec: BenchSpec, device: torch.device) -> tuple[tuple[int, int], tuple[int, int]]:
    """(rows, cols) the bench's physics runs on, and those of its Fourier SLM."""
    with simulated_on(spec, device).open() as bench:
        return optical_table(bench.context).simulation_shape, bench.fourier_slm.grid.shape


def measure(spec: BenchSpec, batch: int, seconds: float, device: torch.device) -> float:
    with simulated_on(spec, device).open() as bench:
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


def fft_floor(batch: int, shape: tuple[int, int], seconds: float, device: torch.device) -> float:
    """Frames/s of two forward 2-D FFTs of ``shape`` per frame (complex64, ``batch`` frames at a time) on ``device``."""
    field = torch.randn(batch, *shape, dtype=torch.complex64, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.fft.fft2(torch.fft.fft2(field))  # warm-up (plans the transform)
    sync()
    frames, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.fft.fft2(torch.fft.fft2(field))
        sync()
        frames += batch
    return frames / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per batch size")
    parser.add_argument("--batches", default="1,64", help="comma-separated batch sizes (e.g. 1,64,256 on a GPU)")
    parser.add_argument("--device", default="auto", help=f"torch device for the physics, {DEVICE_CHOICES} (auto: a GPU where there is one)")
    parser.add_argument("--bench", type=Path, default=None, help="bench file whose simulated devices to measure (default: the 256x256 bench above)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own choice)")
    args = parser.parse_args()
    try:
        device = resolve_device(args.device)
        batches = [int(b) for b in args.batches.split(",")]
    except DeviceUnavailable as exc:
        parser.error(str(exc))
    except ValueError:
        parser.error(f"--batches must be comma-separated integers; got {args.batches!r}")
    if min(batches) < 1:
        parser.error(f"--batches must be positive; got {args.batches!r}")
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads must be positive; got {args.threads}")
        torch.set_num_threads(args.threads)
    try:
        spec = load_bench(args.bench)
    except LabctlError as exc:
        parser.error(str(exc))
    print(f"torch {torch.__version__} on {device}, {torch.get_num_threads()} threads")
    grid, slm = simulation_grid(spec, device)
    summary: dict[str, float | str] = {
        "bench": "default" if args.bench is None else str(args.bench),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "sim_grid": f"{grid[0]}x{grid[1]}",
    }
    for batch in batches:
        fps = measure(spec, batch, args.seconds, device)
        floor = fft_floor(batch, grid, args.seconds, device)
        slm_floor = fft_floor(batch, slm, args.seconds, device)
        print(
            f"batch {batch:4d}: {fps:10.1f} frames/s; FFT-pair floor {floor:10.1f} at {grid[0]}x{grid[1]} "
            f"(ratio {fps / floor:.2f}), {slm_floor:10.1f} at {slm[0]}x{slm[1]} (ratio {fps / slm_floor:.2f})"
        )
        summary[f"fps_batch{batch}"] = round(fps, 1)
        summary[f"fft_floor_fps_batch{batch}"] = round(floor, 1)
        summary[f"fft_floor_slm_grid_fps_batch{batch}"] = round(slm_floor, 1)
        summary[f"floor_ratio_batch{batch}"] = round(fps / floor, 3)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
