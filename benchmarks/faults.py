"""A run through a faulty simulated bench: camera timeouts, a disconnect, an SLM write failure.

Each input shows its own index as a binary code of bright blocks on the input modulator (flat
Fourier mask, so the camera sees it imaged); a frame processor decodes the index back from the
camera frame. So the benchmark checks not only that every input got a row, but that each row holds
the frame of *that* input: a frame paired with the wrong input counts as lost and duplicated.

Usage: python benchmarks/faults.py [--frames N] [--timeout-rate R] [--batch B] [--seed S]
Last line: JSON with frames, completed, lost, duplicated, faults_injected (and their breakdown).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from importlib import resources
from pathlib import Path

import numpy as np

from calibration.acquisition import Acquirer, RetryPolicy
from drivers.bench import BenchSpec
from labctl.optics.geometry import CameraPose, FourFGeometry, input_to_camera_affine
from labctl.records.run_record import Column, RunRecord
from labctl.runner.loop import METADATA_COLUMNS, run_inputs

BITS = 10
GRID = (3, 4)  # block rows x cols on the input modulator (12 >= BITS + 2 reference blocks)


def faulty_bench(frames: int, timeout_rate: float, seed: int) -> BenchSpec:
    rng = np.random.default_rng(seed)
    disconnect_at = int(rng.integers(frames // 4, 3 * frames // 4))
    write_fail_at = int(rng.integers(1, max(2, frames // 64)))  # an input-modulator write mid-run
    text = resources.files("mock_hw").joinpath("default_bench.toml").read_text()
    text = text.replace(
        "[camera]\n", f"[camera]\nmissed_trigger_rate = {timeout_rate}\ndisconnect_at_frames = [{disconnect_at}]\n", 1
    )
    text = text.replace("[input_slm]\n", f"[input_slm]\nwrite_failure_at = [{write_fail_at}]\n", 1)
    return BenchSpec.from_toml(text, source="<faulty benchmark bench>")


def block_slices(rows: int, cols: int) -> list[tuple[slice, slice]]:
    br, bc = rows // GRID[0], cols // GRID[1]
    margin = max(2, br // 6)
    return [
        (slice(r * br + margin, (r + 1) * br - margin), slice(c * bc + margin, (c + 1) * bc - margin))
        for r in range(GRID[0]) for c in range(GRID[1])
    ]


def coded_inputs(n: int, shape: tuple[int, int]) -> np.ndarray:
    """Amplitudes (n, rows, cols): block 0 always on, block 1 always off, blocks 2.. the index bits."""
    blocks = block_slices(*shape)
    out = np.zeros((n, *shape), np.float32)
    for i in range(n):
        out[i][blocks[0]] = 1.0
        for b in range(BITS):
            if (i >> b) & 1:
                out[i][blocks[2 + b]] = 1.0
    return out


class IndexDecoder:
    """Frame → the input index it shows, from the camera pixels at the block centres."""

    columns = [Column("decoded", (), "i8")]

    def __init__(self, affine: np.ndarray, shape: tuple[int, int]) -> None:
        centres = []
        for rs, cs in block_slices(*shape):
            x, y = (cs.start + cs.stop - 1) / 2, (rs.start + rs.stop - 1) / 2
            centres.append(affine @ np.array([x, y, 1.0]))
        self.pixels = np.rint(np.array(centres)).astype(int)  # (blocks, 2) camera (col, row)

    def __call__(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        values = np.stack([frames[:, max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2].mean(axis=(1, 2)) for x, y in self.pixels], axis=1)
        threshold = (values[:, 0] + values[:, 1]) / 2  # between the always-on and always-off blocks
        bits = values[:, 2 : 2 + BITS] > threshold[:, None]
        return {"decoded": (bits * (1 << np.arange(BITS))).sum(axis=1)}


class CountingRecord:
    """A run record that counts how often each input's row is written."""

    def __init__(self, record: RunRecord) -> None:
        self._record = record
        self.writes: Counter[int] = Counter()

    def __getattr__(self, name: str):  # noqa: ANN204 - plain delegation
        return getattr(self._record, name)

    def write_batch(self, indices, values, frames=None) -> None:
        self._record.write_batch(indices, values, frames)
        self.writes.update(int(i) for i in indices)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--timeout-rate", type=float, default=0.05)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.frames > 2**BITS:
        parser.error(f"at most {2**BITS} frames can be told apart by the {BITS}-bit code")
    spec = faulty_bench(args.frames, args.timeout_rate, args.seed)
    with spec.open() as bench, tempfile.TemporaryDirectory() as tmp:
        inp, cam, fourier = bench.input_slm, bench.camera, bench.fourier_slm
        geometry = FourFGeometry(spec.optics.wavelength_m, spec.optics.f1_m, spec.optics.f2_m, *fourier.grid.shape, fourier.grid.pitch_m)
        affine = input_to_camera_affine(geometry, *inp.grid.shape, inp.grid.pitch_m, *cam.grid.shape, cam.grid.pitch_m, CameraPose())
        decoder = IndexDecoder(affine, inp.grid.shape)
        amplitudes = coded_inputs(args.frames, inp.grid.shape)
        flat = fourier.phase_table.gray_for_phase(np.zeros(fourier.grid.shape))
        cam.exposure_s = 2e-4
        record = CountingRecord(RunRecord.create(Path(tmp) / "faults.h5", args.frames,
                                                 decoder.columns + METADATA_COLUMNS + [Column("label", (), "i8")], {}))
        acquirer = Acquirer(bench, flat, RetryPolicy(attempts=8, first_backoff_s=0.001, max_backoff_s=0.01))
        summary = run_inputs(acquirer, lambda a: a, amplitudes, np.arange(args.frames), decoder, record, args.batch)
        done = record.done
        decoded = record.column("decoded")
        events = Counter(e["kind"] for e in record.events())
        record.close()
        injected = dict(cam.faults_injected)
        injected["slm_write_failures"] = inp.faults_injected["write_failures"] + fourier.faults_injected["write_failures"]
    index = np.arange(args.frames)
    correct = done & (decoded == index)
    misassigned = int((done & (decoded != index)).sum())
    rewritten = sum(c - 1 for c in record.writes.values() if c > 1)
    result = {
        "frames": args.frames,
        "completed": int(done.sum()),
        "lost": int(args.frames - correct.sum()),
        "duplicated": int(rewritten + misassigned),
        "faults_injected": int(sum(v for v in injected.values() if v)),
        "faults_recovered": summary.faults,
        "injected": injected,
        "logged": dict(events),
        "seconds": round(summary.seconds, 2),
    }
    print(f"{args.frames} inputs, batch {args.batch}: {result['completed']} completed, {misassigned} paired with the wrong "
          f"frame, {rewritten} rows written twice; faults injected {injected}, recovered {summary.faults} ({dict(events)})")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
