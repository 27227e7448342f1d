"""The paper's efficiency analysis (Xiang et al. 2022, Sec. 5): per image, the nonlinear teacher's
convolution stack on an electronic processor versus the hybrid — the SCLC front end as one optical
frame (an SLM update and a camera exposure at a given rate) plus the electronic back end.

FLOPs are counted analytically (multiply-add = 2 FLOPs); times are measured on the chosen torch
device (this CPU, or a GPU), so the crossover says where optics wins against that processor.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

from labctl.models.backend import ClassifierBackEnd
from labctl.models.errors import ModelConfigError
from labctl.models.teacher import TeacherCNN, TeacherConfig


@dataclass(frozen=True)
class EfficiencyRow:
    size: int
    teacher_gflop: float  # conv stack of the teacher
    sclc_digital_gflop: float  # the same SCLC front end done with FFTs on a CPU
    backend_gflop: float
    teacher_ms: float  # measured on the device
    backend_ms: float
    optical_frame_ms: float
    hybrid_ms: float  # frame + back end (latency)
    hybrid_throughput_ms: float  # pipelined: max(frame, back end)
    optical_wins: bool

    def as_dict(self) -> dict:
        return asdict(self)


def conv_stack_flops(config: TeacherConfig) -> float:
    """3×3 convolutions (+BatchNorm and ReLU, 4 FLOPs per output) of the teacher's feature stack."""
    flops, c_in, n = 0.0, config.in_channels, config.size
    for c_out in config.block_channels():
        for _ in range(config.convs):
            flops += n * n * c_out * (2 * 9 * c_in + 4)
            c_in = c_out
        if n > 4:
            n //= 2
    return flops


def sclc_fft_flops(size: int, in_channels: int, channels: int) -> float:
    """One FFT per input channel, a complex multiply-add per filter and frequency, one inverse FFT and
    |·|² per output channel (5 N log2 N FLOPs per complex FFT of N points)."""
    n2 = size * size
    fft = 5 * n2 * math.log2(n2)
    return in_channels * fft + channels * in_channels * n2 * 8 + channels * (fft + 3 * n2)


def backend_flops(channels: int, size: int, pool: int, hidden: int, classes: int, conv_channels: int = 0, conv_layers: int = 1) -> float:
    """BatchNorm and average pooling of the detected channels, the optional 3×3 convolutions from
    the pooled size on (each +BatchNorm, ReLU and max pooling, 5 FLOPs per output), then the MLP."""
    flops = channels * size * size * 3.0
    for _ in range(conv_layers if conv_channels else 0):
        flops += pool * pool * conv_channels * (2 * 9 * channels + 5)
        channels, pool = conv_channels, -(-pool // 2)
    feats = channels * pool * pool
    return flops + 2 * feats * hidden + 2 * hidden * classes


def _ms_per_image(module: nn.Module, x: torch.Tensor, min_time_s: float) -> float:
    """Median per-image milliseconds over repeated batched runs (at least 3, about ``min_time_s``, at
    most 50) on ``x``'s device; a GPU is synchronised around each run, so its queue is timed too."""
    module.eval()
    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)
    with torch.no_grad():
        module(x)  # warm-up
        sync()
        times: list[float] = []
        start = time.perf_counter()
        while len(times) < 3 or (time.perf_counter() - start < min_time_s and len(times) < 50):
            t0 = time.perf_counter()
            module(x)
            sync()
            times.append(time.perf_counter() - t0)
    return 1e3 * sorted(times)[len(times) // 2] / x.shape[0]


def crossover_size(rows: list[EfficiencyRow]) -> int | None:
    """The smallest measured size from which the hybrid wins at every larger measured size too (None
    where it does not win at the largest): a win at one small size between losses is timing noise."""
    crossover = None
    for row in sorted(rows, key=lambda r: r.size, reverse=True):
        if not row.optical_wins:
            break
        crossover = row.size
    return crossover


def efficiency_table(
    sizes: list[int], frame_rate_hz: float = 100.0, channels: int = 16, teacher_width: int = 32, teacher_depth: int = 3,
    hidden: int = 128, backend_pool: int = 7, classes: int = 10, batch: int = 8, min_time_s: float = 0.3, teacher_convs: int = 1,
    backend_conv: int = 0, backend_conv_layers: int = 1, device: torch.device = torch.device("cpu"),
) -> list[EfficiencyRow]:
    """One row per size: FLOPs, the teacher's conv stack and the back end timed on ``device``, and
    the hybrid's time with one optical frame at ``frame_rate_hz``."""
    if frame_rate_hz <= 0:
        raise ModelConfigError(f"frame rate must be positive; got {frame_rate_hz} Hz")
    rows = []
    frame_ms = 1e3 / frame_rate_hz
    for size in sizes:
        if size < 8:
            raise ModelConfigError(f"image size {size} is too small (>= 8 px)")
        config = TeacherConfig("classification", 1, size, classes, teacher_depth, teacher_width, convs=teacher_convs)
        teacher = TeacherCNN(config).to(device)
        b = max(1, min(batch, int(batch * (64 / size) ** 2)))
        teacher_ms = _ms_per_image(teacher.features, torch.rand(b, 1, size, size, device=device), min_time_s)
        back = ClassifierBackEnd(channels, classes, min(backend_pool, size), hidden, conv_channels=backend_conv, conv_layers=backend_conv_layers)
        backend_ms = _ms_per_image(back.to(device), torch.rand(b, channels, size, size, device=device), min_time_s)
        hybrid = frame_ms + backend_ms
        rows.append(EfficiencyRow(
            size=size, teacher_gflop=conv_stack_flops(config) / 1e9, sclc_digital_gflop=sclc_fft_flops(size, 1, channels) / 1e9,
            backend_gflop=backend_flops(channels, size, min(backend_pool, size), hidden, classes, backend_conv, backend_conv_layers) / 1e9,
            teacher_ms=teacher_ms, backend_ms=backend_ms, optical_frame_ms=frame_ms, hybrid_ms=hybrid,
            hybrid_throughput_ms=max(frame_ms, backend_ms), optical_wins=hybrid < teacher_ms,
        ))
    return rows


def plot_efficiency(rows: list[EfficiencyRow], path, frame_rate_hz: float, device: str = "cpu") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r.size for r in rows]
    fig, (ax_t, ax_f) = plt.subplots(1, 2, figsize=(10, 4))
    ax_t.loglog(sizes, [r.teacher_ms for r in rows], "o-", label=f"teacher conv stack ({device})")
    ax_t.loglog(sizes, [r.hybrid_ms for r in rows], "s-", label=f"optical frame @ {frame_rate_hz:g} Hz + back end")
    ax_t.loglog(sizes, [r.hybrid_throughput_ms for r in rows], "s--", label="hybrid, pipelined")
    ax_t.loglog(sizes, [r.backend_ms for r in rows], ":", label=f"back end alone ({device})")
    ax_t.set(xlabel="input size (px)", ylabel="time per image (ms)", title="measured time")
    ax_f.loglog(sizes, [r.teacher_gflop for r in rows], "o-", label="teacher conv stack")
    ax_f.loglog(sizes, [r.sclc_digital_gflop for r in rows], "^-", label="SCLC front end digitally (FFT)")
    ax_f.loglog(sizes, [r.backend_gflop for r in rows], "s-", label="electronic back end (hybrid)")
    ax_f.set(xlabel="input size (px)", ylabel="GFLOP per image", title="electronic FLOPs")
    for ax in (ax_t, ax_f):
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
