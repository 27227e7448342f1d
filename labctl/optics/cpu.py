"""How the optics run on the CPU: many small steps on one thread.

A batch's physics done a frame (or a few) at a time keeps its arrays small: reused from the
allocator's free lists and in cache, where a whole batch's fresh arrays cost their page faults on
every call (measured: about ten times the arithmetic of an addition). Those many small steps run on
one thread: split over threads, each step waits at a barrier for all of them, and on a shared
machine a thread the scheduler has set aside makes every barrier wait for its time slice (measured
on 2 shared cores: 64 frames at 6 frames/s on 2 threads, 220 frames/s on one).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

#: Fourier-plane samples per step on the CPU (one frame of a 360×360 grid; of smaller grids several).
#: Rendering 64 frames at 360×360 on 2 shared cores took 220 ms at one frame per step, 239 at two,
#: 256 at four, 300 at eight.
CPU_CHUNK_SAMPLES = 2**17


def frames_per_step(n: int, samples_per_frame: int, device: torch.device) -> int:
    """Frames of ``n`` handled per step: all of them on a GPU, about :data:`CPU_CHUNK_SAMPLES` samples' worth on the CPU."""
    if device.type != "cpu":
        return max(1, n)
    return max(1, min(n, CPU_CHUNK_SAMPLES // max(1, samples_per_frame)))


@contextmanager
def one_cpu_thread(device: torch.device) -> Iterator[None]:
    """Run torch's CPU operations of the block on one thread (nothing changes for a GPU), then
    restore the thread count. OpenMP keeps the count per calling thread, so other Python threads'
    torch work keeps its own."""
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
