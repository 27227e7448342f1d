"""``labctl demo``: teacher, students, calibration, masks and runs on the (simulated) bench, one table."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from labctl.cli.common import bench_option, clean_errors, load_bench_spec
from labctl.cli.device_option import device_option
from labctl.data.spec import SPEC_HELP

if TYPE_CHECKING:  # torch is imported when a command runs, not for --help
    import torch


@click.command("demo")
@bench_option
@click.option(
    "--data", "data_spec", default="fashion-mini", show_default=True,
    help=f"Data set ({SPEC_HELP}). Default: the embedded Fashion-MNIST subset; digits is the fast option.",
)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: demo-runs/<date-time>; an existing demo is never overwritten).")
@click.option("--train-limit", default=None, type=click.IntRange(1), help="Train on the first N images only.")
@click.option("--test-limit", default=None, type=click.IntRange(1), help="Run the first N test images through the bench.")
@click.option("--seed", default=0, show_default=True)
@device_option("training and the simulated bench's physics")
@clean_errors
def demo_command(
    bench_file: Path | None, data_spec: str, out: Path | None, train_limit: int | None, test_limit: int | None, seed: int,
    device: torch.device,
) -> None:
    """Distil, calibrate, export and run on the bench; print teacher / students / optical results.

    Writes everything (checkpoints, calibration records, masks, run records) under --out, and
    summary.json with the figures. Last line: that summary as JSON.
    """
    from labctl.data import load_dataset
    from labctl.demo import DemoSettings, run_demo

    console = Console()
    if out is None:
        out = Path("demo-runs") / time.strftime("%Y%m%d-%H%M%S")
    spec = load_bench_spec(bench_file)
    data = load_dataset(data_spec)
    if train_limit is None and len(data.train) > 6000:
        train_limit = 6000
        console.print(f"[yellow]{data.spec}: training on the first {train_limit} images to keep the demo short "
                      "(--train-limit to change)[/yellow]")
    if test_limit is None and len(data.test) > 1000:
        test_limit = 1000
        console.print(f"[yellow]{data.spec}: running the first {test_limit} test images through the bench "
                      "(--test-limit to change)[/yellow]")
    settings = DemoSettings(train_limit=train_limit, test_limit=test_limit, seed=seed, device=str(device))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # the uncalibrated run warns by design
        summary = run_demo(spec, data, out, settings, log=console.print)
    metric = summary["metric"]
    table = Table(title=f"labctl demo on {data.spec} ({metric}, test split)")
    table.add_column("model")
    table.add_column(metric, justify="right")
    table.add_column("electronic MFLOP", justify="right")
    rows = [
        ("teacher (nonlinear CNN)", "teacher", "teacher"),
        ("SCLC student, no KD (digital)", "student_nokd", "student_nokd"),
        ("SCLC student, KD (digital)", "student_kd", "student_kd"),
        ("optics-aware student, distilled from SCLC + KD (twin)", "optics_aware_digital", "optics_aware"),
        ("optical, bench uncalibrated", "optical_uncalibrated", "optics_aware"),
        ("optical, bench calibrated", "optical_calibrated", "optics_aware"),
    ]
    for label, key, model in rows:
        value, mflops = summary[key], summary["mflops"][model]
        table.add_row(label, "n/a" if value is None else f"{100 * value:.1f} %", "n/a" if mflops is None else f"{mflops:.2f}")
    frames = summary["frames_per_input"]
    table.add_row("runner rate", f"{summary['frames_per_s']:.1f} inputs/s", f"{frames} frame{'s' if frames > 1 else ''}/input")
    console.print(table)
    console.print("electronic MFLOP per image: all of the teacher; a student's back end (its front end is optical)")
    if summary["figure"]:
        console.print(f"figure: {summary['figure']} (test inputs, camera frames, channel tiles, predictions)")
    console.print(f"total {summary['seconds']:.0f} s ({summary['cpu_seconds']:.0f} CPU-s); everything is in {out} (summary.json)")
    click.echo(json.dumps({k: summary[k] for k in ("teacher", "student_nokd", "student_kd", "optics_aware_digital",
                                                   "optical_uncalibrated", "optical_calibrated", "mflops", "frames_per_s", "seconds",
                                                   "cpu_seconds")}))
