"""Training in several processes under ``torchrun`` (torch.distributed): who this process is, the
process group's life cycle, and the few collectives the training loop needs.

``torchrun`` starts the processes and sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` in each; a
process started any other way is a world of one and never touches torch.distributed. Backend: nccl
on CUDA, gloo on CPUs (shared/REFERENCES.md, "Beyond one process").
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from drivers.errors import LabctlError
from labctl.training.sync_batchnorm import sync_batchnorms

#: environment variables every torchrun worker has
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


class DistributedSetupError(LabctlError, RuntimeError):
    """The torchrun environment is incomplete or does not fit the chosen device."""


@dataclass(frozen=True)
class Processes:
    """This process's place among the training processes, and the device it computes on."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes checkpoints, curves, training state and progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def shard_order(self, n: int, epoch: int, seed: int, shuffle: bool = True) -> torch.Tensor:
        """This rank's indices of ``n`` items for ``epoch``: a DistributedSampler reshuffled per epoch
        (``set_epoch``), every rank's shard the same length (a few items repeat to even them out)."""
        sampler = DistributedSampler(range(n), num_replicas=self.world_size, rank=self.rank, shuffle=shuffle, seed=seed)
        sampler.set_epoch(epoch)
        return torch.tensor(list(sampler), dtype=torch.long)

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """Element-wise sum of ``values`` over all processes (the tensor itself in a world of one)."""
        if not self.distributed:
            return values
        total = values.to(self.device).clone()
        dist.all_reduce(total)
        return total.to(values.device)

    def gather(self, values: torch.Tensor) -> list[torch.Tensor]:
        """``values`` (same shape on every rank) of every rank, in rank order."""
        if not self.distributed:
            return [values]
        local = values.to(self.device)
        gathered = [torch.empty_like(local) for _ in range(self.world_size)]
        dist.all_gather(gathered, local)
        return [g.to(values.device) for g in gathered]


def synced_copy(model: nn.Module, processes: Processes) -> nn.Module:
    """The module each process trains: ``model`` itself in a world of one; else a copy whose
    BatchNorms sync their statistics across processes (the caller's model keeps plain BatchNorms;
    copy the trained state back with ``load_state_dict`` — the names are the same)."""
    if not processes.distributed:
        return model
    return sync_batchnorms(copy.deepcopy(model), processes.device)


def data_parallel(module: nn.Module, processes: Processes) -> nn.Module:
    """``module`` wrapped in DistributedDataParallel (gradients averaged across processes every step);
    ``module`` itself in a world of one. Save ``module``'s state, not the wrapper's (no ``module.`` prefix)."""
    if not processes.distributed:
        return module
    # DDP lays out its gradient buckets like the parameters; a convolution whose gradient comes out in
    # another memory layout (the channels-last back end; a 1-channel first convolution, whose two
    # layouts differ in strides only) has its gradient copied into the bucket: correct, and warned
    # about once per process as a possible slowdown. Not worth the noise in every training log.
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    device_ids = [processes.device.index] if processes.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids)


def launched_by_torchrun() -> bool:
    return all(name in os.environ for name in TORCHRUN_VARIABLES)


def _device_for_rank(device: torch.device, local_rank: int) -> torch.device:
    """``cuda`` without an index means this process's own GPU: the one numbered by its local rank."""
    if device.type != "cuda":
        return device
    if device.index is not None:
        return device
    if local_rank >= torch.cuda.device_count():
        raise DistributedSetupError(
            f"local rank {local_rank} has no GPU of its own ({torch.cuda.device_count()} visible); "
            "start at most one process per GPU (--nproc-per-node)"
        )
    return torch.device("cuda", local_rank)


@contextmanager
def training_processes(device: torch.device) -> Iterator[Processes]:
    """This process's :class:`Processes`: under torchrun with more than one process, the default
    process group is set up (nccl on CUDA, gloo otherwise) and torn down on leaving."""
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        yield Processes(device=device)
        return
    rank, world, local = (int(os.environ[name]) for name in TORCHRUN_VARIABLES)
    device = _device_for_rank(device, local)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield Processes(rank, world, local, device)
    except BaseException:
        dist.destroy_process_group()
        raise
    # Rank 0 writes the checkpoint and reports after training while the others have nothing left to
    # do; they wait for it here rather than tear their connections down under a group still in use.
    # (Before it, the test suite's two-process gloo run once ended with rank 1 aborted, "terminate
    # called without an active exception", while rank 0 still ran; 40 runs in a row did not repeat
    # it, so a teardown race is the likely cause, not a proven one.)
    try:
        dist.barrier()
    finally:
        dist.destroy_process_group()
