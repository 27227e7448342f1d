"""The ``--device`` option every computing command shares; its value arrives as a :class:`torch.device`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from labctl.device import DEVICE_CHOICES

def _resolve(ctx: click.Context, param: click.Parameter, value: str) -> Any:
    """Resolve at parse time, so that a GPU that is not there is refused before any work, in one line."""
    from labctl.device import DeviceUnavailable, resolve_device

    try:
        return resolve_device(value)
    except DeviceUnavailable as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def device_option(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--device auto|cpu|cuda[:N]`` (default ``auto``: a GPU where PyTorch sees one); ``what`` says what runs there."""
    return click.option(
        "--device", "device", default="auto", show_default=True, metavar=DEVICE_CHOICES, callback=_resolve,
        help=f"Torch device for {what}: auto picks a CUDA GPU where there is one.",
    )
