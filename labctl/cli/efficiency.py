"""``labctl efficiency``: FLOPs and measured time (on the chosen device) of the teacher's convolution
stack versus the optical hybrid (one frame at the SLM/camera rate + the electronic back end), for a
range of sizes, and the size from which the hybrid wins."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from labctl.cli.common import clean_errors, load_bench_spec
from labctl.cli.device_option import device_option
from labctl.cli.train import DEFAULT_TEACHER_CONVS

if TYPE_CHECKING:  # torch is imported when a command runs, not for --help
    import torch


@click.command("efficiency")
@click.option("--sizes", default="32,64,128,256,512,1024", show_default=True, help="Input sizes in px, comma-separated.")
@click.option(
    "--rate", "rate_hz", type=click.FloatRange(min=0, min_open=True), default=None,
    help="SLM/camera frame rate (Hz). Default: the rate of --bench's devices, else 100 Hz (LC SLMs ~60-500 Hz, cameras ~100 fps).",
)
@click.option(
    "--bench", "bench_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Take the frame rate from this bench's devices: 1 / (input-modulator settle + camera exposure + readout).",
)
@click.option("--embedded-bench", is_flag=True, help="As --bench, with the embedded simulated bench.")
@click.option("--channels", type=click.IntRange(1), default=16, show_default=True, help="Optical output channels (camera tiles).")
@click.option("--teacher-width", type=click.IntRange(1), default=32, show_default=True)
@click.option("--teacher-depth", type=click.IntRange(1), default=3, show_default=True)
@click.option("--teacher-convs", type=click.IntRange(1), default=DEFAULT_TEACHER_CONVS, show_default=True, help="3x3 convolutions per teacher block.")
@click.option("--hidden", type=click.IntRange(1), default=128, show_default=True, help="Hidden units of the back end's MLP.")
@click.option("--backend-pool", type=click.IntRange(1), default=7, show_default=True, help="Side of the pooled intensity map the back end reads.")
@click.option("--backend-conv", type=click.IntRange(0), default=0, show_default=True, help="Channels of the back end's 3x3 convolutions; 0: none.")
@click.option("--backend-conv-layers", type=click.IntRange(1), default=1, show_default=True, help="How many back-end convolutions.")
@click.option("--threads", type=click.IntRange(1), default=1, show_default=True, help="CPU threads for the timed runs.")
@device_option("the timed teacher and back end")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True, help="Folder for efficiency.png/json.")
@clean_errors
def efficiency_command(
    sizes: str, rate_hz: float | None, bench_file: Path | None, embedded_bench: bool, channels: int, teacher_width: int, teacher_depth: int,
    teacher_convs: int, hidden: int, backend_pool: int, backend_conv: int, backend_conv_layers: int, threads: int, device: torch.device,
    out: Path,
) -> None:
    """Where does the optical hybrid beat the nonlinear CNN on this CPU or GPU?

    The back-end defaults are the optics-aware student's (16 camera tiles, no convolution); for the
    default SCLC classifier pass --channels 32 --hidden 256 --backend-pool 14 --backend-conv 64
    --backend-conv-layers 2.
    """
    import torch

    from labctl.frame_rate import DEFAULT_FRAME_RATE_HZ
    from labctl.models.efficiency import crossover_size, efficiency_table, plot_efficiency

    if backend_conv_layers != 1 and not backend_conv:
        raise click.UsageError("--backend-conv-layers needs a back-end convolution (--backend-conv N > 0)")
    if sum((rate_hz is not None, bench_file is not None, embedded_bench)) > 1:
        raise click.UsageError("--rate, --bench and --embedded-bench each set the frame rate; give one")
    rate_source = "--rate" if rate_hz is not None else "default"
    if bench_file is not None or embedded_bench:
        rate_hz, rate_source = _bench_rate_hz(bench_file), str(bench_file or "embedded simulated bench")
    rate_hz = rate_hz or DEFAULT_FRAME_RATE_HZ
    torch.set_num_threads(threads)
    try:
        size_list = [int(s) for s in sizes.split(",")]
    except ValueError:
        raise click.BadParameter(f"--sizes must be comma-separated integers; got {sizes!r}") from None
    rows = efficiency_table(
        size_list, rate_hz, channels, teacher_width, teacher_depth, hidden, backend_pool, teacher_convs=teacher_convs, backend_conv=backend_conv,
        backend_conv_layers=backend_conv_layers, device=device,
    )
    table = Table(title=f"teacher conv stack on {device} vs optical frame @ {rate_hz:g} Hz + back end (per image)")
    for col in ("px", "teacher\nGFLOP", "SCLC FFT\nGFLOP", "back end\nGFLOP", "teacher\nms", "back end\nms", "hybrid\nms", "pipelined\nms", "optics\nwins"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            str(r.size), f"{r.teacher_gflop:.4f}", f"{r.sclc_digital_gflop:.4f}", f"{r.backend_gflop:.4f}", f"{r.teacher_ms:.3f}",
            f"{r.backend_ms:.3f}", f"{r.hybrid_ms:.3f}", f"{r.hybrid_throughput_ms:.3f}", "yes" if r.optical_wins else "no",
        )
    console = Console()
    console.print(table)
    out.mkdir(parents=True, exist_ok=True)
    plot_efficiency(rows, out / "efficiency.png", rate_hz, str(device))
    crossover = crossover_size(rows)
    summary = {
        "device": str(device), "rate_hz": rate_hz, "rate_source": rate_source, "crossover_px": crossover, "rows": [r.as_dict() for r in rows],
    }
    (out / "efficiency.json").write_text(json.dumps(summary, indent=2))
    console.print(f"optical front end wins from {crossover} px" if crossover else "optical front end does not win at the largest size")
    console.print(f"saved {out / 'efficiency.png'} and {out / 'efficiency.json'}")
    click.echo(json.dumps({"device": str(device), "rate_hz": rate_hz, "crossover_px": crossover,
                           "teacher_ms": {r.size: round(r.teacher_ms, 3) for r in rows},
                           "hybrid_ms": {r.size: round(r.hybrid_ms, 3) for r in rows}}))


def _bench_rate_hz(bench_file: Path | None) -> float:
    """The device-limited frame rate of the bench (None: the embedded simulated one), opened briefly."""
    from labctl.frame_rate import device_limited_rate_hz

    with load_bench_spec(bench_file).open() as bench:
        return device_limited_rate_hz(bench)
