"""``labctl export-masks`` and ``labctl run``: distilled masks onto the bench, frames into the back end."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from labctl.cli.common import bench_option, clean_errors, load_bench_spec
from labctl.masks.encoding import ENCODINGS
from labctl.runner.drift_settings import DriftSettings


@click.command("export-masks")
@click.argument("checkpoint", type=click.Path(exists=True, path_type=Path))
@bench_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Mask file to write (.h5).")
@click.option("--encoding", type=click.Choice(ENCODINGS), default=ENCODINGS[0], show_default=True,
              help="How an SCLC student's complex filters become SLM phase: iterative (data-free), optimised "
                   "(iterative, then refined through the twin of the calibrated panel on training images), "
                   "double-phase (closed form), or auto: iterative where its back end, reading it through the calibrated "
                   "twin, stays within a point of the digital model on training images, else optimised unless that reads "
                   "worse; optimised where the panel's fringing spoils the iterative field. An optics-aware student's "
                   "phase is shown as trained.")
@clean_errors
def export_masks_command(checkpoint: Path, bench_file: Path | None, out: Path, encoding: str) -> None:
    """Turn a trained student (CHECKPOINT file or run folder) into the Fourier SLM's mask file."""
    from labctl.masks.export import (
        AUTO_TWIN_CHECK_LOSS, INPUT_LEAK_MISMATCH, PANEL_ADDED_ERROR_WARNING, PANEL_FRINGING_MISMATCH_PX, export_masks,
        panel_added_error,
    )

    spec = load_bench_spec(bench_file)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  transient=True) as progress:
        task = progress.add_task("export", total=None)

        def on_stage(stage: str, done: int, total: int) -> None:
            progress.update(task, description=stage, completed=done, total=total)

        masks = export_masks(checkpoint, spec, out, encoding=encoding, on_stage=on_stage)
    lay = masks.layout
    Console().print(
        f"{masks.method}: {lay.channels} channel(s) on {len(lay.tiles)} tile(s) of {lay.tile_size} camera px "
        f"({masks.frames_per_input} mask(s) and camera frame(s) per input), image {lay.image_size} px "
        f"x{lay.image_scale} on the input modulator; phase table {masks.calibration['slm_phase']!r}; saved {out}"
    )
    panel = masks.extra["panel"]
    if masks.method == "optics-aware" and abs(lay.fringing_sigma_px - panel["fringing_sigma_px"]) > PANEL_FRINGING_MISMATCH_PX:
        Console().print(
            f"[yellow]warning:[/yellow] the student was trained through a panel of {lay.fringing_sigma_px:.2f} px fringing; "
            f"this bench's calibration measured {panel['fringing_sigma_px']:.2f} px: expect the bench to read below the "
            "twin. Train it against this bench's calibration (labctl train student --optics-aware --bench ...)."
        )
    modulator = masks.extra["input_modulator"]
    if masks.method == "optics-aware" and abs(lay.input_leak - modulator["leak_amplitude"]) > INPUT_LEAK_MISMATCH:
        measured = ("has no input-response calibration" if modulator["amplitude_table"] == "linear" else
                    f"measured {modulator['leak_amplitude']:.3f} (input-response record {modulator['amplitude_table']})")
        Console().print(
            f"[yellow]warning:[/yellow] the student was trained for an input modulator whose dark pixels leak "
            f"{lay.input_leak:.3f} of full on; this bench {measured}: expect the bench to read below the twin. "
            "Train it against this bench's calibration (labctl train student --optics-aware --bench ...)."
        )
    check = masks.extra.get("twin_check")
    if check is not None and "skipped" in check:
        Console().print(
            f"[yellow]note:[/yellow] the twin check of the {masks.method.removeprefix('sclc-')} export was skipped: "
            f"{check['skipped']}"
        )
    elif check is not None:
        first, kept = next(iter(check.values())), check[masks.method.removeprefix("sclc-")]
        read = ", ".join(f"{name} {c['optical']:.1%}" for name, c in check.items())
        Console().print(
            f"twin check on {first['images']} training images (calibrated panel and input leak), {first['metric']}: "
            f"digital {first['digital']:.1%}, {read}; kept {masks.method.removeprefix('sclc-')}"
        )
        if kept["digital"] - kept["optical"] > AUTO_TWIN_CHECK_LOSS:
            Console().print(
                f"[yellow]warning:[/yellow] through the twin the kept export reads {100 * (kept['digital'] - kept['optical']):.1f} "
                "points below the digital model on training images: expect the bench to read below it too. An optics-aware "
                "student trained against this bench's calibration (labctl train student --optics-aware --bench ...) "
                "learns around what the encodings cannot shape."
            )
    if masks.method == "sclc-optimised":
        Console().print(
            f"readout match through the calibrated panel (fringing {lay.fringing_sigma_px:.2f} px, fill factor "
            f"{lay.fill_factor:.2f}): {masks.extra['match_before']:.2f} from the iterative start, "
            f"{masks.extra['match_after']:.2f} optimised (1: the digital student's detection)"
        )
    panel_error = masks.extra.get("panel_region_error")
    if masks.method != "sclc-optimised" and panel_error is not None and panel_added_error(masks.extra) > PANEL_ADDED_ERROR_WARNING:
        Console().print(
            f"[yellow]warning:[/yellow] on this panel (fringing {lay.fringing_sigma_px:.2f} px, fill factor "
            f"{lay.fill_factor:.2f}, from its phase calibration) the {masks.method.removeprefix('sclc-')} encoding's field errs by "
            f"{panel_error:.2f} where the tiles read it ({masks.extra['ideal_region_error']:.2f} on an ideal panel): expect "
            "the bench to read well below the digital model (--encoding auto or optimised fits the mask through the "
            "calibrated panel). An optics-aware student trained against this bench's "
            "calibration (labctl train student --optics-aware --bench ...) learns around the fringing."
        )


@click.command("run")
@bench_option
@click.option("--masks", "masks_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@click.option("--data", "data_spec", default="digits", show_default=True, help="Data spec (test split is run).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Run record (.h5).")
@click.option("--student", type=click.Path(exists=True, path_type=Path), default=None,
              help="Student checkpoint (default: the one named in the mask file, checked by hash).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run: only inputs not yet recorded are run.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1, 4096))
@click.option("--limit", default=None, type=click.IntRange(1), help="Run only the first N test inputs.")
@click.option("--save-frames", is_flag=True, help="Keep the raw camera frames (compressed) in the record.")
@click.option("--exposure", "exposure_s", default=None, type=float, help="Camera exposure in s (default: automatic).")
@click.option("--resize", is_flag=True, help="Resize the data's images to the size the masks were made for.")
@click.option("--drift-every", default=DriftSettings.every_batches, show_default=True, type=click.IntRange(0),
              help="Show the drift references again every N batches, correct the readout gain when it moved, "
                   "stop when the response changed beyond a gain (0: no drift checks).")
@click.option("--drift-inputs", default=DriftSettings.inputs, show_default=True, type=click.IntRange(1),
              help="Reference inputs per drift check (the first training inputs of the readout-scale fit).")
@clean_errors
def run_command(
    bench_file: Path | None, masks_file: Path, data_spec: str, out: Path, student: Path | None, resume: bool,
    batch_size: int, limit: int | None, save_frames: bool, exposure_s: float | None, resize: bool, drift_every: int,
    drift_inputs: int,
) -> None:
    """Show each test input, capture, read the channel tiles, run the back end, record the prediction.

    Every --drift-every batches a few reference inputs are shown again and compared with their
    readouts at the start: a gain that moved is corrected from the next input on, a change no gain
    can undo stops the run (resumable); each check is in the record (labctl report plots them)."""
    from labctl.data import load_dataset
    from labctl.masks.mask_file import MaskFile
    from labctl.runner.session import RunOptions, run_masks

    console = Console()
    spec = load_bench_spec(bench_file)
    masks = MaskFile.load(masks_file)
    data = load_dataset(data_spec, size=masks.layout.image_size if resize else None)
    options = RunOptions(batch_size=batch_size, limit=limit, save_frames=save_frames, exposure_s=exposure_s,
                         drift=DriftSettings(every_batches=drift_every, inputs=drift_inputs))
    frames_per_input = masks.frames_per_input
    stop = threading.Event()
    with Progress(
        TextColumn("[bold]run"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(), console=console, transient=False,
    ) as progress, warnings.catch_warnings():
        warnings.showwarning = lambda message, *args, **kwargs: console.print(f"[yellow]warning: {message}[/yellow]")
        task = progress.add_task("run", total=None, rate="")
        clock = {}

        def on_progress(done: int, total: int) -> None:
            import time

            now = time.perf_counter()
            clock.setdefault("t0", (now, done))
            t0, d0 = clock["t0"]
            rate = f"{(done - d0) / (now - t0):.0f} inputs/s" if now > t0 and done > d0 else ""
            progress.update(task, completed=done, total=total, rate=rate)

        summary, path = run_masks(spec, masks_file, data, out, options=options, resume=resume, student_path=student,
                                  on_progress=on_progress, stop=stop)
    state = "interrupted (continue with --resume)" if summary.interrupted else "complete"
    if summary.stop_reason:
        console.print(f"[red]stopped: {summary.stop_reason}[/red]")
    console.print(
        f"run {state}: {summary.processed} input(s) this time, {summary.skipped_done} already done, "
        f"{summary.faults} fault(s) recovered, {summary.frames_per_s:.1f} inputs/s "
        f"({summary.frames_per_s * frames_per_input:.1f} camera frames/s, {frames_per_input} per input); record {path}"
    )
    console.print(f"next: labctl report {path}")
    if summary.interrupted:
        raise SystemExit(130)  # as a shell reports Ctrl-C: scripts can tell an unfinished run
