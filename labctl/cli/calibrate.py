"""``labctl calibrate slm|camera|registration|input|all``: measure, save records + plots, write a bench file."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from calibration.records import KINDS, load_record
from calibration.run import SLM_METHODS, calibrate_all
from labctl.cli.common import bench_option, clean_errors, load_bench_spec

KINDS_OF = {"slm": ("slm_phase",), "camera": ("camera",), "registration": ("registration",),
            "input": ("input_response",), "all": KINDS}


@click.command("calibrate")
@click.argument("what", type=click.Choice(list(KINDS_OF)))
@bench_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("calibration-out"),
              show_default=True, help="Folder for the records (JSON + .npz), plots (PNG), raw data and bench.toml.")
@click.option("--method", type=click.Choice(list(SLM_METHODS)), default="diffraction", show_default=True,
              help="How the SLM phase response is measured (slm and all).")
@clean_errors
def calibrate_command(what: str, bench_file: Path | None, out: Path, method: str) -> None:
    """Calibrate the input modulator's response, the SLM phase response, the camera response and/or the SLM↔camera registration.

    ``all`` measures them in that order: the input response first, so the later steps show their
    input patterns through its table. Writes one record per calibration, a PNG plot beside it, the
    raw measurements under OUT/raw, and OUT/bench.toml: the bench with a [calibration] table naming
    the new records.
    """
    console = Console()
    spec = load_bench_spec(bench_file)
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("opening the bench", total=1.0)

        def progress(message: str, fraction: float) -> None:
            bar.update(task, description=message, completed=fraction)

        paths = calibrate_all(spec, out, progress, kinds=KINDS_OF[what], slm_method=method)
        bar.update(task, description="done", completed=1.0)
    for kind, path in paths.items():
        record = load_record(path)
        summary = ", ".join(f"{k} {v:.4g}" for k, v in record.residuals.items() if isinstance(v, float))
        console.print(f"{kind}: {path}  ({summary})  plot {path.with_suffix('.png')}")
        if kind == "input_response" and "leak_amplitude" in record.params:
            how = "under every level" if record.params.get("leak_adds") else "where the image is darker"
            console.print(f"  dark pixels leak {record.params['leak_amplitude']:.4f} of full on (field; shown {how}); "
                          "the twin adds their light from the whole modulator")
        faults = record.params.get("acquisition_faults") or {}
        if faults:
            counts = ", ".join(f"{n} {k}" for k, n in sorted(faults.items()))
            console.print(f"  recovered from {sum(faults.values())} acquisition faults ({counts}); listed in {out / 'raw' / kind}.npz")
    console.print(f"bench file with these records: {out / 'bench.toml'}")
