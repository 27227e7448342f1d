"""Does a data set fit a model? Checked before a run record is created or an evaluation starts, so a
label beyond the model's classes or images of another size is refused with the numbers, instead of
failing mid-run (or worse, running: a 28-px model fed 4x4 images scaled up)."""

from __future__ import annotations

from typing import Any

from labctl.data.dataset import Dataset
from labctl.data.errors import DataFitError
from labctl.data.spec import load_dataset

#: specs whose images are stored at a fixed size (resizing them changes the data); the embedded
#: sets and carvana are drawn or decoded at the size asked for
STORED_SIZE = ("idx", "cifar10")


def check_test_split(data: Dataset) -> None:
    if len(data.test) == 0:
        raise DataFitError(f"{data.spec}: the test split holds no inputs; nothing to run")


def check_fits_model(data: Dataset, config: Any, model: str) -> None:
    """Refuse ``data`` for a model with ``config`` (task, in_channels, size, num_classes) named ``model``."""
    check_test_split(data)
    if data.task != config.task:
        raise DataFitError(f"{data.spec} is a {data.task} data set; {model} is a {config.task} model")
    if data.channels != config.in_channels:
        raise DataFitError(f"{data.spec} has {data.channels}-channel images; {model} takes {config.in_channels}")
    if data.size != config.size:
        raise DataFitError(f"{data.spec} has {data.size}x{data.size}-px images; {model} takes {config.size}x{config.size} px")
    for name, split in (("train", data.train), ("test", data.test)):
        if len(split) == 0:
            continue
        lo, hi = int(split.targets.min()), int(split.targets.max())
        if lo < 0 or hi >= config.num_classes:
            raise DataFitError(
                f"{data.spec}: {name} labels span {lo}..{hi}; {model} has {config.num_classes} classes (0..{config.num_classes - 1})"
            )


def load_for_model(spec: str, config: Any, model: str, trained_on: str | None, resize: bool = False) -> Dataset:
    """``spec`` at the model's image size, checked against the model.

    Images stored at a fixed size are resized only to reproduce training (``spec`` is the data the
    model was trained on) or when asked (``resize``); otherwise a size mismatch is refused."""
    if spec.partition(":")[0] in STORED_SIZE:
        data = load_dataset(spec)
        if data.size != config.size and not (resize or spec == trained_on):
            raise DataFitError(
                f"{spec} has {data.size}x{data.size}-px images; {model} takes {config.size}x{config.size} px "
                f"(it was trained on {trained_on}); pass --resize to scale them"
            )
        data = data.resized(config.size)
    else:
        data = load_dataset(spec, config.size)
    check_fits_model(data, config, model)
    return data
