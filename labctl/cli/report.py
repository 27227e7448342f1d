"""``labctl report RUN.h5``: accuracy (or IoU/Dice), confusion matrix, rates and faults of a run."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from labctl.cli.common import clean_errors


@click.command("report")
@click.argument("run_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@clean_errors
def report_command(run_file: Path) -> None:
    """Print what a run achieved; save its confusion matrix (and its drift checks, if any) as PNGs
    beside it. Last line: JSON."""
    from labctl.records.drift_history import save_drift_png
    from labctl.records.report import build_report, save_confusion_png

    console = Console()
    report = build_report(run_file)
    table = Table(title=f"run {run_file}")
    table.add_column("what")
    table.add_column("value")
    table.add_row("inputs done", f"{report.done} of {report.inputs}")
    for key, value in report.metrics.items():
        table.add_row(key, f"{value:.4f}")
    if report.camera_frames_per_s is not None:
        table.add_row("camera frames/s", f"{report.camera_frames_per_s:.1f}")
    if report.wall_frames_per_s is not None:
        table.add_row("run frames/s (wall)", f"{report.wall_frames_per_s:.1f}")
    table.add_row("faults recovered", ", ".join(f"{k}: {v}" for k, v in sorted(report.faults.items())) or "none")
    table.add_row("drift checks", report.drift.describe() if report.drift is not None else "none (run without a drift monitor)")
    for key in ("method", "bench_file", "mask_file", "model_checkpoint", "data"):
        table.add_row(key, str(report.provenance.get(key)))
    table.add_row("calibration", json.dumps(report.provenance.get("calibration")))
    console.print(table)
    if report.confusion is not None:
        png = save_confusion_png(report.confusion, run_file.with_suffix(".confusion.png"),
                                 f"{run_file.name}: accuracy {report.metrics['accuracy']:.3f}")
        console.print(f"confusion matrix saved to {png}")
    if report.drift is not None and report.drift.checks.size:
        png = save_drift_png(report.drift, run_file.with_suffix(".drift.png"), f"{run_file.name}: drift checks")
        console.print(f"drift checks plotted in {png}")
    if report.done < report.inputs:
        console.print(f"[yellow]{report.inputs - report.done} input(s) not run yet: labctl run ... --resume[/yellow]")
    click.echo(json.dumps(report.summary()))
