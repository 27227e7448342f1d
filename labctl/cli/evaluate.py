"""``labctl evaluate CKPT --data SPEC``: test-set accuracy (classification) or IoU/Dice
(segmentation) of any trained model; the last output line is a JSON object of the metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console

from labctl.cli.common import clean_errors
from labctl.cli.device_option import device_option
from labctl.data.spec import SPEC_HELP

if TYPE_CHECKING:  # torch is imported when a command runs, not for --help
    import torch


@click.command("evaluate")
@click.argument("checkpoint", type=click.Path(exists=True, path_type=Path))
@click.option("--data", "data_spec", default=None, help=f"Data set ({SPEC_HELP}); default: the one it was trained on.")
@click.option("--batch-size", type=click.IntRange(1), default=256, show_default=True)
@click.option("--resize", is_flag=True, help="Scale stored images (idx, cifar10) of another size to the model's.")
@device_option("the model")
@clean_errors
def evaluate_command(checkpoint: Path, data_spec: str | None, batch_size: int, resize: bool, device: torch.device) -> None:
    """Evaluate CHECKPOINT (model.pt, model.json or the training run's folder) on the test split."""
    from labctl.data.fit import load_for_model
    from labctl.models.checkpoint import load_checkpoint
    from labctl.training.metrics import evaluate

    loaded = load_checkpoint(checkpoint)
    spec = data_spec or loaded.meta.get("data") or "digits"
    data = load_for_model(spec, loaded.config, f"model {loaded.path}", loaded.meta.get("data"), resize)
    metrics = evaluate(loaded.model.to(device), data.test, data.task, batch_size)
    Console().print(f"{loaded.kind} model {loaded.path} on {spec} ({len(data.test)} test images): "
                    + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    click.echo(json.dumps(metrics))
