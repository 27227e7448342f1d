"""Which torch device a command computes on: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.

The one place that turns a ``--device`` value into a :class:`torch.device`, so that every command
(training, evaluation, fine-tuning, the efficiency timings, the demo and the simulated bench)
accepts the same spellings and refuses a GPU that is not there in the same words.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from drivers.errors import LabctlError

if TYPE_CHECKING:
    import torch

#: what ``--device`` accepts
DEVICE_CHOICES = "auto|cpu|cuda[:N]"
_PATTERN = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")


class DeviceUnavailable(LabctlError, ValueError):
    """A ``--device`` value that is malformed, or names a GPU this machine does not have."""


def resolve_device(text: str = "auto") -> torch.device:
    """The device ``text`` names: ``auto`` is the first GPU where CUDA is available, else the CPU.

    ``cuda`` without an index stays index-less (the current CUDA device; under ``torchrun`` each
    process picks its local rank's GPU). Raises :class:`DeviceUnavailable` for ``cuda`` / ``cuda:N``
    on a machine without that GPU, and for anything that is not ``auto``, ``cpu`` or ``cuda[:N]``.
    """
    import torch  # here, so that the CLI's option definitions (and ``labctl --help``) need no torch

    match = _PATTERN.match(text.strip().lower())
    if match is None or (match.group(2) is not None and match.group(1) != "cuda"):
        raise DeviceUnavailable(f"device {text!r} is not one of {DEVICE_CHOICES}")
    kind, index = match.group(1), match.group(2)
    if kind == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        build = "this PyTorch is a CPU-only build" if torch.version.cuda is None else "no CUDA GPU is visible to PyTorch"
        raise DeviceUnavailable(f"device {text!r} asked for a GPU, but {build}; use --device cpu or auto")
    if index is not None and int(index) >= torch.cuda.device_count():
        raise DeviceUnavailable(f"device {text!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s), numbered from 0")
    return torch.device("cuda", int(index)) if index is not None else torch.device("cuda")
