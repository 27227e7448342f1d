"""Freed tensor memory stays in the process, so a training step does not fault it in again."""

from __future__ import annotations

import ctypes
import sys

import pytest
import torch

from labctl.training.allocator import retain_freed_memory

LIBC = ctypes.CDLL(None) if sys.platform.startswith("linux") else None
ON_GLIBC = LIBC is not None and hasattr(LIBC, "gnu_get_libc_version")


class MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2``: the allocator's statistics over all arenas, in bytes."""

    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")
    ]


def mallinfo() -> MallInfo2:
    LIBC.mallinfo2.restype = MallInfo2
    return LIBC.mallinfo2()


@pytest.mark.skipif(not ON_GLIBC or not hasattr(LIBC, "mallinfo2"), reason="the allocator tuning is for glibc's malloc (2.33+ to inspect it)")
def test_large_blocks_come_from_the_heap_and_stay_there_when_freed() -> None:
    assert retain_freed_memory()
    assert retain_freed_memory()  # idempotent
    size = 31 * 2**20  # bytes: just under glibc's 32 MiB ceiling for the mmap threshold
    mapped = mallinfo().hblkhd
    tensor = torch.ones(size // 4)
    assert mallinfo().hblkhd - mapped < 2**20, "a 31 MiB tensor was given its own mmap"
    del tensor
    # malloc and free directly, so that no other allocation sits above the blocks at the heap's top
    LIBC.malloc.restype, LIBC.malloc.argtypes, LIBC.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]
    blocks = [LIBC.malloc(size) for _ in range(4)]
    heap = mallinfo().arena
    for block in reversed(blocks):
        LIBC.free(block)
    # glibc's default trim threshold (128 KiB, or twice a dynamic mmap threshold) would hand most of it back
    assert mallinfo().arena >= heap - 2**20, f"the heap shrank from {heap >> 20} to {mallinfo().arena >> 20} MiB on free"


@pytest.mark.skipif(ON_GLIBC, reason="off glibc the call must decline")
def test_elsewhere_the_allocator_is_left_alone() -> None:
    assert retain_freed_memory() is False
