"""``labctl bench check``: open every device, show a test pattern, capture, report."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
from rich.console import Console
from rich.table import Table

from calibration.session import open_session
from drivers.bench import Bench
from drivers.slm import SLM
from labctl.cli.common import bench_option, clean_errors, load_bench_spec
from labctl.test_patterns import resolution_target


@click.group()
def bench() -> None:
    """Inspect the bench's devices."""


def device_table(bench_: Bench) -> Table:
    table = Table(title=f"bench {bench_.spec.name!r} ({bench_.spec.source})")
    for col in ("role", "driver", "model", "serial", "geometry", "details"):
        table.add_column(col)
    for role, device in bench_.devices.items():
        info = device.info
        geometry, details = "", ""
        if isinstance(device, SLM):
            g = device.grid
            geometry = f"{g.rows}x{g.cols} @ {g.pitch_m * 1e6:.2f} µm"
            details = f"{device.role}, {device.bit_depth}-bit, {device.wavelength_m * 1e9:.0f} nm, settle {device.settle_time_s * 1e3:g} ms"
        elif role == "camera":
            cam = bench_.camera
            g = cam.grid
            lo, hi = cam.exposure_limits_s
            geometry = f"{g.rows}x{g.cols} @ {g.pitch_m * 1e6:.2f} µm"
            details = f"{cam.bit_depth}-bit, exposure {cam.exposure_s * 1e3:g} ms ({lo:g}–{hi:g} s)"
            if cam.gain_limits is not None:
                details += f", gain {cam.gain:g}"
        table.add_row(role, info.driver, f"{info.vendor} {info.model}", info.serial, geometry, details)
    return table


@bench.command("check")
@bench_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("bench-check"), show_default=True,
              help="Folder for the captured frame (PNG and .npy).")
@clean_errors
def check(bench_file: Path | None, out: Path) -> None:
    """Open every device, write a test pattern, capture a frame, print a device table, save a PNG."""
    console = Console()
    spec = load_bench_spec(bench_file)
    with open_session(spec, kinds=("input_response", "slm_phase")) as session:
        b = session.bench
        console.print(device_table(b))
        b.input_slm.write_amplitude(resolution_target(*b.input_slm.grid.shape))
        b.fourier_slm.write_phase(np.zeros(b.fourier_slm.grid.shape))
        frame = b.camera.capture()
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "frame.npy", frame.data)
    png = out / "frame.png"
    save_frame_png(frame.data, png, title=f"bench check: frame {frame.frame_number}, exposure {frame.exposure_s * 1e3:g} ms")
    data = frame.data
    saturated = float((data >= 2 ** b.camera.bit_depth - 1).mean())
    console.print(
        f"frame {frame.frame_number}: {data.shape[0]}x{data.shape[1]}, min {data.min()} max {data.max()} "
        f"mean {data.mean():.1f} DN, saturated {saturated:.2%}; saved {png}"
    )
    if saturated > 0.01:
        console.print("[yellow]warning: more than 1 % of pixels saturated; lower the exposure[/yellow]")
    console.print("[green]bench check passed[/green]")


def save_frame_png(data: np.ndarray, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4.5))
    im = ax.imshow(data, cmap="gray")
    fig.colorbar(im, ax=ax, label="DN")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("camera column")
    ax.set_ylabel("camera row")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
