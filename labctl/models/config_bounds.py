"""Documented bounds on a checkpoint's model config, checked before the model is built.

A ``model.json`` edited (or damaged) to a width of 10⁶ would otherwise allocate terabytes and die
with a MemoryError. Two checks, both before any real allocation:

1. every integer setting is an integer within :data:`INT_BOUNDS` (sizes that drive loops or optical
   grids are bounded there; widths only by the budget below);
2. the model's weights — counted on PyTorch's "meta" device, which allocates nothing — plus, for an
   optics-aware student, its phase mask and optical planes fit in :data:`MEMORY_BUDGET_BYTES`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from drivers.errors import LabctlError

#: inclusive range of each integer setting a config may hold (any kind of model)
INT_BOUNDS: dict[str, tuple[int, int]] = {
    "in_channels": (1, 64),
    "size": (8, 1024),
    "num_classes": (1, 100_000),
    "depth": (1, 16),
    "convs": (1, 8),
    "levels": (1, 8),
    "oversample": (1, 16),
    "backend_pool": (1, 1024),
    "backend_conv_layers": (1, 8),
    "init_kernel": (1, 1024),
    "kernel_support": (0, 1024),
    # widths: bounded by the memory budget; the cap only keeps the count within PyTorch's int range
    "width": (1, 2**31 - 1),
    "hidden": (1, 2**31 - 1),
    "backend_conv": (0, 2**31 - 1),
}
#: per entry of the list settings
LIST_BOUNDS: dict[str, tuple[int, int, int]] = {  # name: (max entries, min value, max value)
    "channels": (16, 1, 4096),
    "pool": (16, 1, 1024),
}
#: integer settings of an optics-aware student's layout (device pixels per side, image placement)
LAYOUT_INT_BOUNDS = (0, 16384)
MAX_TILES = 1024
#: the most memory one model may need for its weights (and optical planes), in bytes
MEMORY_BUDGET_BYTES = 4 * 2**30
#: complex64 planes an optics-aware student keeps per pixel of its largest optical grid (field,
#: transfer function and frame buffers; an estimate on the safe side)
_OPTICAL_PLANES = 4


class ConfigBoundsError(LabctlError, ValueError):
    """Raised with a message; :func:`check_config` callers turn it into a CheckpointError naming the file."""


def _int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigBoundsError(f"config {name} = {value!r} is not an integer")
    if not lo <= value <= hi:
        raise ConfigBoundsError(f"config {name} = {value} is outside {lo}..{hi} (bounds in {__name__})")
    return value


def check_bounds(config: dict[str, Any]) -> None:
    for name, (lo, hi) in INT_BOUNDS.items():
        if name in config:
            _int(name, config[name], lo, hi)
    for name, (entries, lo, hi) in LIST_BOUNDS.items():
        if name in config:
            values = config[name]
            if not isinstance(values, list) or len(values) > entries:
                raise ConfigBoundsError(f"config {name} must be a list of at most {entries} integers; got {values!r:.80}")
            for i, v in enumerate(values):
                _int(f"{name}[{i}]", v, lo, hi)
    layout = config.get("layout")
    if isinstance(layout, dict):
        for key, value in layout.items():
            if isinstance(value, int) and not isinstance(value, bool):
                _int(f"layout.{key}", value, *LAYOUT_INT_BOUNDS)
        tiles = layout.get("tiles")
        if isinstance(tiles, list) and not 1 <= len(tiles) <= MAX_TILES:
            raise ConfigBoundsError(f"config layout.tiles holds {len(tiles)} tiles; 1..{MAX_TILES} allowed")


def _human(n_bytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n_bytes < 1024 or unit == "PiB":
            return f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    raise AssertionError("unreachable")


def _tensor_bytes(module: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in [*module.parameters(), *module.buffers()])


def estimate_bytes(kind: str, config: dict[str, Any]) -> int:
    """Weights (and optical planes) of the model ``config`` describes, counted without allocating."""
    from labctl.models.backend import ClassifierBackEnd, SegmentationBackEnd
    from labctl.models.checkpoint import build_model

    with torch.device("meta"):
        if kind != "optics_aware":
            return _tensor_bytes(build_model(kind, config))
        # The student's own constructor computes its initial phase (real numbers, not meta), so
        # its back end is counted here and its optical grids are estimated.
        layout = config["layout"]
        channels, size = len(layout["tiles"]), int(config["size"])
        if config["task"] == "classification":
            back: nn.Module = ClassifierBackEnd(
                channels, config["num_classes"], min(config.get("backend_pool", 7), size), config.get("hidden", 128),
                config.get("linear_backend", False), config.get("backend_conv", 0), config.get("backend_conv_layers", 1),
            )
        else:
            back = SegmentationBackEnd(channels, config["num_classes"], config.get("hidden", 128), size, config.get("linear_backend", False))
    grid = max(layout["fourier_rows"] * layout["fourier_cols"], layout["camera_rows"] * layout["camera_cols"],
               layout["input_rows"] * layout["input_cols"])
    return _tensor_bytes(back) + grid * _OPTICAL_PLANES * torch.complex64.itemsize


def check_config(kind: str, config: dict[str, Any]) -> None:
    """Raise ConfigBoundsError unless ``config`` is within the documented bounds and budget.

    Errors of the config itself (missing or unknown settings) are left to the real build, which
    reports them; only the budget is judged here."""
    check_bounds(config)
    try:
        needed = estimate_bytes(kind, config)
    except (TypeError, ValueError, KeyError):
        return  # not a valid config (fails before allocating): the build that follows names the problem
    except RuntimeError as exc:  # PyTorch cannot even size a tensor this large
        raise ConfigBoundsError(
            f"the {kind} model this config describes is too large to count ({exc}); the budget is "
            f"{_human(MEMORY_BUDGET_BYTES)} ({__name__}.MEMORY_BUDGET_BYTES); refused before allocating it"
        ) from None
    if needed > MEMORY_BUDGET_BYTES:
        raise ConfigBoundsError(
            f"the {kind} model this config describes needs about {_human(needed)} for its weights"
            f"{' and optical planes' if kind == 'optics_aware' else ''}, over the {_human(MEMORY_BUDGET_BYTES)} "
            f"budget for one model ({__name__}.MEMORY_BUDGET_BYTES); refused before allocating it"
        )
