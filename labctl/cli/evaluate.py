"""``labctl evaluate CKPT --data SPEC``: test-set accuracy (classification) or IoU/Dice
(segmentation) of any trained model; the last output line is a JSON object of the metrics."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console

from labctl.cli.common import clean_errors
from labctl.data.spec import SPEC_HELP


@click.command("evaluate")
@click.argument("checkpoint", type=click.Path(exists=True, path_type=Path))
@click.option("--data", "data_spec", default=None, help=f"Data set ({SPEC_HELP}); default: the one it was trained on.")
@click.option("--batch-size", type=click.IntRange(1), default=256, show_default=True)
@clean_errors
def evaluate_command(checkpoint: Path, data_spec: str | None, batch_size: int) -> None:
    """Evaluate CHECKPOINT (model.pt, model.json or the training run's folder) on the test split."""
    from labctl.data import load_dataset
    from labctl.models.checkpoint import CheckpointError, load_checkpoint
    from labctl.training.metrics import evaluate

    loaded = load_checkpoint(checkpoint)
    spec = data_spec or loaded.meta.get("data") or "digits"
    config = loaded.config
    data = load_dataset(spec, config.size)
    if (data.task, data.channels) != (config.task, config.in_channels) or data.num_classes > config.num_classes:
        raise CheckpointError(
            loaded.path, f"a {config.task} model for {config.in_channels}-channel images and {config.num_classes} classes "
            f"cannot be evaluated on {spec} ({data.task}, {data.channels} channel(s), {data.num_classes} classes)",
        )
    metrics = evaluate(loaded.model, data.test, data.task, batch_size)
    Console().print(f"{loaded.kind} model {loaded.path} on {spec} ({len(data.test)} test images): "
                    + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    click.echo(json.dumps(metrics))
