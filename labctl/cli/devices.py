"""``labctl devices``: the drivers a bench file can name and, for a bench, each device's identity
and the result of a short self-test."""

from __future__ import annotations

import inspect
from pathlib import Path

import click
import numpy as np
from rich.console import Console
from rich.table import Table

from drivers.camera import Camera
from drivers.capabilities import firmware
from drivers.device import Device
from drivers.errors import DeviceError
from drivers.instruments import PowerMeter, Shutter
from drivers.registry import DeviceKind, driver_class, driver_names
from drivers.slm import SLM
from labctl.cli.common import clean_errors, load_bench_spec


def self_test(device: Device) -> str:
    """One harmless action per kind of device; returns what it saw (raises DeviceError on failure)."""
    if isinstance(device, SLM):
        device.write_gray(np.full(device.grid.shape, device.levels // 2, dtype=np.uint16))
        return f"wrote a flat gray-{device.levels // 2} pattern (frame {device.frame_count})"
    if isinstance(device, Camera):
        frame = device.capture()
        return f"captured frame {frame.frame_number}: {frame.data.shape}, {frame.data.min()}..{frame.data.max()} DN"
    if isinstance(device, Shutter):
        device.block_beam()
        if device.beam_open:
            raise DeviceError(device.name, "reports open after block_beam()")
        return "blocked the beam, read back closed"
    if isinstance(device, PowerMeter):
        return f"{device.read_power_w() * 1e6:.4g} µW at {device.wavelength_m * 1e9:.1f} nm"
    return "no self-test for this kind of device"


def drivers_table() -> Table:
    table = Table(title="drivers a bench file can name (driver = \"NAME\")")
    for col in ("kind", "name", "class", "summary"):
        table.add_column(col)
    for kind in DeviceKind:
        for name in driver_names(kind):
            cls = driver_class(kind, name)
            summary = (inspect.getdoc(cls) or "").split("\n", 1)[0]
            table.add_row(str(kind), name, f"{cls.__module__}.{cls.__name__}", summary)
    return table


@click.command("devices")
@click.option("--bench", "bench_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Bench file whose devices to open, identify and self-test.")
@clean_errors
def devices(bench_file: Path | None) -> None:
    """List the available drivers; with --bench, open each device, print identity and self-test result."""
    console = Console()
    console.print(drivers_table())
    if bench_file is None:
        return
    spec = load_bench_spec(bench_file)
    table = Table(title=f"devices of bench {spec.name!r} ({spec.source})")
    for col in ("role", "driver", "vendor", "model", "serial", "firmware", "self-test"):
        table.add_column(col)
    failed = 0
    with spec.open() as bench:
        for role, device in bench.devices.items():
            info = device.info
            try:
                result = "ok: " + self_test(device)
            except DeviceError as exc:
                failed += 1
                result = f"FAILED: {exc}"
            table.add_row(role, info.driver, info.vendor, info.model, info.serial, firmware(device), result)
    console.print(table)
    if failed:
        raise click.ClickException(f"{failed} device(s) failed the self-test")
