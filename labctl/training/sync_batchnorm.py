"""BatchNorm statistics over the whole global batch when training in several processes.

``torch.nn.SyncBatchNorm`` does this on GPUs only (it refuses CPU tensors), so on CPUs (gloo)
:class:`GlooSyncBatchNorm` does the same with one differentiable all-reduce of per-channel sums:
in training mode each process normalises with the mean and variance of all processes' batches, and
the gradient flows back through them to every process, as it would through one large batch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed._functional_collectives as funcol
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


class GlooSyncBatchNorm(_BatchNorm):
    """A BatchNorm of any dimensionality (input (B, C, ...)) with statistics synced across processes.

    Outside training mode, or in a world of one, it is a plain BatchNorm. Same parameters and
    buffers (and state-dict names) as ``nn.BatchNorm*d``.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected an input of at least 2 dimensions (B, C, ...); got {input.dim()}")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(input)
        self._check_input_dim(input)
        c = input.shape[1]
        dims = [0, *range(2, input.dim())]
        count = input.new_full((1,), input.numel() // max(c, 1))
        # torch's differentiable all-reduce: the backward pass sums the gradients over processes too
        totals = funcol.all_reduce(torch.cat([input.sum(dims), input.square().sum(dims), count]), "sum", dist.group.WORLD)
        n = totals[-1]
        mean = totals[:c] / n
        var = (totals[c : 2 * c] / n - mean.square()).clamp_min(0)
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), var.detach(), float(n.detach()))
        shape = (1, c) + (1,) * (input.dim() - 2)
        out = (input - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, n: float) -> None:
        """As ``F.batch_norm`` does: the running variance is the unbiased one; momentum None is a cumulative average."""
        assert self.num_batches_tracked is not None and self.running_mean is not None and self.running_var is not None
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean.lerp_(mean, factor)
        self.running_var.lerp_(var * (n / max(n - 1.0, 1.0)), factor)


def _to_gloo_sync(module: nn.Module) -> nn.Module:
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
        tensors = [*module.parameters(), *module.buffers()]
        synced = GlooSyncBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats,
            device=tensors[0].device if tensors else None,
        )
        synced.load_state_dict(module.state_dict())
        synced.train(module.training)
        return synced
    for name, child in module.named_children():
        module.add_module(name, _to_gloo_sync(child))
    return module


def sync_batchnorms(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` with every BatchNorm replaced by one that syncs its statistics across processes:
    ``torch.nn.SyncBatchNorm`` on CUDA, :class:`GlooSyncBatchNorm` elsewhere (in place, like
    ``SyncBatchNorm.convert_sync_batchnorm``; returns the root)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _to_gloo_sync(module)
