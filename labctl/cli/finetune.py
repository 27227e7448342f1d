"""``labctl finetune``: in-situ fine-tuning of the back end and the mask against the bench."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console

from labctl.cli.common import bench_option, clean_errors, load_bench_spec
from labctl.cli.device_option import device_option

if TYPE_CHECKING:  # torch is imported when a command runs, not for --help
    import torch


@click.command("finetune")
@bench_option
@click.option("--masks", "masks_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@click.option("--student", type=click.Path(exists=True, path_type=Path), default=None,
              help="Student checkpoint the masks came from (default: the one named in the mask file).")
@click.option("--teacher", type=click.Path(exists=True, path_type=Path), default=None,
              help="Teacher for KD (default: the model the student was distilled from, if recorded).")
@click.option("--data", "data_spec", default="digits", show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--fraction", default=0.1, show_default=True, type=click.FloatRange(0, 1, min_open=True),
              help="Share of the training set captured per epoch.")
@click.option("--epochs", default=6, show_default=True, type=click.IntRange(1),  # PATConfig.epochs (the CLI imports no torch)
              help="Physics-aware epochs, each a pass over a fresh --fraction of the training set.")
@click.option("--heldout", default=None, type=click.IntRange(1), help="Test inputs used to measure (default: all).")
@click.option("--backend-only", is_flag=True, help="Fine-tune the back end only (no physics-aware mask training).")
@click.option("--resume", is_flag=True, help="Continue an interrupted fine-tuning in --out.")
@click.option("--seed", default=0, show_default=True)
@click.option("--resize", is_flag=True, help="Resize the data's images to the size the masks were made for.")
@device_option("the simulated bench's physics (a real bench computes in its optics; the fine-tuning itself runs on the CPU)")
@clean_errors
def finetune_command(
    bench_file: Path | None, masks_file: Path, student: Path | None, teacher: Path | None, data_spec: str, out: Path,
    fraction: float, epochs: int, heldout: int | None, backend_only: bool, resume: bool, seed: int, resize: bool, device: torch.device,
) -> None:
    """Fine-tune on the bench: back end on captured frames, then the mask by physics-aware training.

    Writes DIR/student (checkpoint), DIR/masks.h5, DIR/finetune.h5 (record) and DIR/finetune.png
    (accuracy against bench frames). Last line: JSON with the accuracies and bench frames used.
    """
    from labctl.bench_device import simulated_on
    from labctl.data import load_dataset
    from labctl.insitu.pat import PATConfig
    from labctl.insitu.session import FineTuneOptions, FineTuneSession
    from labctl.masks.mask_file import MaskFile

    console = Console()
    spec = simulated_on(load_bench_spec(bench_file), device)
    layout = MaskFile.load(masks_file).layout
    data = load_dataset(data_spec, size=layout.image_size if resize else None)
    options = FineTuneOptions(fraction=fraction, heldout=heldout, physics_aware=not backend_only, seed=seed,
                              pat=PATConfig(epochs=epochs, seed=seed))
    session = FineTuneSession(spec, masks_file, student, data, out, teacher, options, log=console.print)
    result = session.run(resume=resume)
    console.print(
        f"digital {result.digital:.4f} | optical before {result.optical_before:.4f} | after back-end fine-tuning "
        f"{result.optical_backend_ft:.4f}" + (f" | after physics-aware training {result.optical_pat:.4f}" if result.optical_pat is not None else "")
        + f" | {result.bench_frames} bench frames for training (+{result.evaluation_frames} to measure)"
    )
    console.print(f"fine-tuned student {result.checkpoint}, masks {result.masks}; plot {out / 'finetune.png'}")
    click.echo(json.dumps(result.summary()))
