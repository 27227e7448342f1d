"""Milliseconds per training step (forward and backward) of the optics-aware student, two ways side
by side: reading each simulated camera frame (the twin's frames, sampled twice by ``grid_sample``:
camera, then tiles; how the student read before, but with the intensity's written-out gradient both
ways share, so the ratio understates the whole change) and the twin's ``read_groups`` (the input spectrum
once for all masks, cache-sized chunks, one sparse readout from the output plane, the intensity's
gradient written out), which the student uses.

    python benchmarks/optics_aware_step.py --threads 2
    python benchmarks/optics_aware_step.py --bench demo-runs/RUN/calibration/bench.toml   # a calibrated bench (its leak, fringing)

Steps alternate between the two ways (so that the machine's drift falls on both), on random images,
after ``--warmup`` steps of each; medians are reported with the largest relative difference between
the two ways' readouts and mask gradients. Last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from drivers.bench import BenchSpec  # noqa: E402
from labctl.models.bench_layout import layout_for_bench  # noqa: E402
from labctl.models.optics_aware import OpticsAwareConfig, OpticsAwareStudent  # noqa: E402
from labctl.optics.layout import modulator_patch  # noqa: E402
from labctl.optics.readout import read_channels  # noqa: E402


def by_frames(student: OpticsAwareStudent, images: torch.Tensor) -> torch.Tensor:
    """The student's readouts through each mask's camera frame (sampled, then its tiles read)."""
    layout = student.layout
    masks = student.phase_mask()
    masks = [masks] if masks.ndim == 2 else list(masks)
    origin = (layout.image_row, layout.image_col)
    patch = modulator_patch(images, layout)
    return torch.cat([
        read_channels(student.twin(patch, mask, origin), student.points, student.config.oversample)[:, : len(layout.group_channels(g))]
        for g, mask in enumerate(masks)
    ], dim=1)


def step(student: OpticsAwareStudent, images: torch.Tensor, weight: torch.Tensor, frames: bool) -> tuple[float, torch.Tensor, torch.Tensor]:
    """Seconds of one forward and backward pass; the readouts and the mask's gradient."""
    student.zero_grad()
    start = time.perf_counter()
    readouts = by_frames(student, images) if frames else student.detected(images)
    (readouts * weight).sum().backward()
    seconds = time.perf_counter() - start
    return seconds, readouts.detach(), student.phase.value.grad.clone()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", default=None, help="bench file (default: the embedded simulated bench)")
    parser.add_argument("--channels", type=int, default=32, help="output channels (the demo's SCLC student: 32, two frames)")
    parser.add_argument("--size", type=int, default=28, help="image side, px")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per way")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.steps < 1 or args.warmup < 1:
        parser.error(f"--steps and --warmup must be >= 1; got {args.steps}, {args.warmup}")
    if args.threads:
        torch.set_num_threads(args.threads)
    spec = BenchSpec.from_file(args.bench) if args.bench else BenchSpec.default()
    layout = layout_for_bench(spec, args.size, args.channels)
    student = OpticsAwareStudent(OpticsAwareConfig("classification", 1, args.size, 10, layout=layout.to_dict()))
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(args.batch_size, 1, args.size, args.size, generator=generator)
    weight = torch.randn(args.batch_size, args.channels, args.size, args.size, generator=generator)
    print(f"{spec.source}: {args.channels} channels in {layout.channel_groups} frame(s), twin grid {student.twin.grid.shape}, "
          f"leak {layout.input_leak:.3f}; batch {args.batch_size}, {torch.get_num_threads()} threads", flush=True)
    times: dict[bool, list[float]] = {True: [], False: []}
    results = {}
    for i in range(args.warmup + args.steps):
        for frames in (True, False):
            seconds, readouts, gradient = step(student, images, weight, frames)
            if i >= args.warmup:
                times[frames].append(seconds)
            results[frames] = (readouts, gradient)
    (slow_read, slow_grad), (fast_read, fast_grad) = results[True], results[False]
    readout_error = float((fast_read - slow_read).abs().max() / slow_read.abs().max())
    gradient_error = float((fast_grad - slow_grad).norm() / slow_grad.norm())
    frames_ms, groups_ms = (1000 * statistics.median(times[k]) for k in (True, False))
    print(f"each frame read: {frames_ms:.0f} ms/step; read_groups: {groups_ms:.0f} ms/step ({frames_ms / groups_ms:.2f}x); "
          f"readouts differ by {readout_error:.1e}, mask gradients by {gradient_error:.1e} (relative)")
    print(json.dumps({"bench": str(spec.source), "channels": args.channels, "frames_per_input": layout.channel_groups,
                      "grid": list(student.twin.grid.shape), "batch_size": args.batch_size, "threads": torch.get_num_threads(),
                      "step_ms_frames": round(frames_ms, 1), "step_ms_read_groups": round(groups_ms, 1),
                      "speedup": round(frames_ms / groups_ms, 2), "readout_rel_err": readout_error, "gradient_rel_err": gradient_error}))


if __name__ == "__main__":
    main()
