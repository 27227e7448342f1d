"""One training loop for teachers and students: AdamW with a one-cycle learning rate, random-shift
augmentation, cross-entropy or (with a teacher) KD on the same augmented batch, the teacher run as
a folded inference copy; the test metric is measured after every epoch."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from labctl.data.dataset import Dataset, Split
from labctl.models.optics_aware import OpticsAwareStudent
from labctl.models.spectral import SpectralConv
from labctl.training.allocator import retain_freed_memory
from labctl.training.augment import random_shift
from labctl.training.errors import TrainingSettingsError
from labctl.training.distributed import Processes, data_parallel, synced_copy
from labctl.training.kd import kd_loss
from labctl.training.metrics import evaluate, evaluation_counts, metrics_from_counts, model_device
from labctl.training.resume import TrainStateFile
from labctl.training.teacher_inference import inference_copy

#: called after each batch with (epoch, batches done in the epoch, batches per epoch, running loss)
ProgressHook = Callable[[int, int, int, float], None]


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 10
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    max_shift: int = 2  # random-translation augmentation, pixels
    train_limit: int | None = None  # use only the first N training images
    # Low temperature, equal weight: on the deformed-digits stand-in (benchmarks/hard_digits.py) T = 1-2
    # gained about 1 point over labels alone, T = 4 and the paper's T = 10 lost; T = 4 lost on
    # Fashion-MNIST too, where these defaults recover 55-56 % of the teacher-student gap with the
    # default student (the sweep: benchmarks/distillation.md).
    kd_temperature: float = 2.0
    kd_alpha: float = 0.5
    mixup: float = 0.0  # Beta(m, m) mixing of image pairs (classification); 0: off
    # learning-rate multiplier for the free per-frequency filters of spectral layers (see
    # parameter_groups); on Fashion-MNIST 16 raised the SCLC by 0.1-0.3 points and its fit to the
    # training images by 1.3 (benchmarks/distillation.md)
    spectral_lr_scale: float = 16.0
    # learning-rate multiplier for an optics-aware student's SLM phase (see parameter_groups)
    phase_lr_scale: float = 30.0
    #: test metrics (and the BatchNorm re-estimate before them) after every this many epochs, and always
    #: after the last; the others' history entries hold the loss and time only. The trained model is the
    #: same either way (the re-estimate starts afresh each time); what a larger step saves is the
    #: forward passes: up to 2 048 training and every test image per epoch (a quarter of an optics-aware
    #: epoch on 3 000 images)
    eval_every: int = 1

    def __post_init__(self) -> None:
        if self.eval_every < 1:
            raise TrainingSettingsError(f"eval_every must be a positive number of epochs; got {self.eval_every}")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.spectral_lr_scale <= 0 or self.phase_lr_scale <= 0:
            raise TrainingSettingsError(
                f"epochs, batch size, learning rate and the spectral and phase learning-rate scales must be positive; "
                f"got {self.epochs}, {self.batch_size}, {self.lr}, {self.spectral_lr_scale}, {self.phase_lr_scale}"
            )


def _mixed(loss: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor, lam: float, partner: torch.Tensor | None) -> torch.Tensor:
    """``loss`` against the labels of a mixed batch: λ·loss(y) + (1−λ)·loss(y of the partners)."""
    if partner is None:
        return loss(y)
    return lam * loss(y) + (1 - lam) * loss(y[partner])


def parameter_groups(model: nn.Module, settings: TrainSettings) -> list[dict]:
    """Optimiser groups: spectral-layer filters at ``lr × spectral_lr_scale``, an optics-aware
    student's SLM phase at ``lr × phase_lr_scale`` without weight decay, everything else at ``lr``.

    Adam moves every weight by about the same step. A k × k spatial kernel whose k² taps each move
    by that step changes its transfer function by up to k² steps at every frequency; a free filter
    value per frequency (:class:`SpectralConv`) changes by one step. Left at the common rate, the
    optical front end learns an order of magnitude more slowly than the back end reading it.
    The same holds for the phase (its logits where it is bounded, :mod:`labctl.optics.phase_parameter`,
    whose steps move a pixel by up to π/2 as much): at the common peak rate (3e-3 rad a step) a few epochs moved it
    by 0.035 rad RMS from its start, so the back end did all the learning; and decay towards zero
    phase means nothing for a quantity that wraps at 2π.
    """
    spectral = {id(p) for m in model.modules() if isinstance(m, SpectralConv) for p in m.parameters() if p.requires_grad}
    phase = {id(m.phase.value) for m in model.modules() if isinstance(m, OpticsAwareStudent) and m.phase.value.requires_grad}
    groups = [
        {"params": [p for p in model.parameters() if p.requires_grad and id(p) not in spectral | phase], "lr": settings.lr},
        # decay divided by the scale: the same shrinkage per step as at the common rate
        {
            "params": [p for p in model.parameters() if id(p) in spectral], "lr": settings.lr * settings.spectral_lr_scale,
            "weight_decay": settings.weight_decay / settings.spectral_lr_scale,
        },
        {"params": [p for p in model.parameters() if id(p) in phase], "lr": settings.lr * settings.phase_lr_scale, "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, split: Split, batch_size: int, max_images: int = 2048) -> None:
    """Re-estimate BatchNorm running statistics with the final weights of the epoch (a cumulative
    average over up to ``max_images`` training images). The usual running average lags the weights
    when they move fast (short, high-learning-rate runs), which can leave an eval-mode network
    predicting one class although it trains well. Runs on the model's device; with synced
    BatchNorms (several processes) each process passes its share and the average is over all."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    device = model_device(model)
    seen = 0
    # training mode draws dropout masks from the global generator: left as found, so that how often
    # the statistics are re-estimated (TrainSettings.eval_every) does not change the training after it
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        for x, _ in split.batches(batch_size):
            model(x.to(device))
            seen += len(x)
            if seen >= max_images:
                break
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.eval()


def _generator_seed(seed: int, rank: int) -> int:
    """Rank 0 draws from ``seed`` itself (a world of one trains as it always has); other ranks from
    independent streams, so that their augmentations differ."""
    return seed if rank == 0 else int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])


def _epoch_batches(
    train: Split, epoch: int, settings: TrainSettings, processes: Processes, generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One process's batches for ``epoch``: all of ``train``, reshuffled by ``generator``, in a world
    of one; else this rank's DistributedSampler shard, ``batch_size / processes`` at a time, so that
    one step still sees ``batch_size`` images in all."""
    if not processes.distributed:
        return train.batches(settings.batch_size, shuffle=True, generator=generator)
    local_batch = -(-settings.batch_size // processes.world_size)
    return train.subset(processes.shard_order(len(train), epoch, settings.seed)).batches(local_batch)


def _recalibrate(module: nn.Module, train: Split, settings: TrainSettings, processes: Processes, max_images: int = 2048) -> None:
    """:func:`recalibrate_batchnorm` over the first ``max_images`` training images, shared out
    evenly among the processes (their synced BatchNorms average over all of them)."""
    if not processes.distributed:
        recalibrate_batchnorm(module, train, settings.batch_size, max_images)
        return
    shard = train.subset(processes.shard_order(min(max_images, len(train)), 0, settings.seed, shuffle=False))
    recalibrate_batchnorm(module, shard, -(-settings.batch_size // processes.world_size), len(shard))


def _evaluate(module: nn.Module, test: Split, task: str, processes: Processes) -> dict[str, float]:
    """Test metrics; with several processes each counts its own slice of the test split."""
    if not processes.distributed:
        return evaluate(module, test, task)
    part = test.subset(torch.arange(processes.rank, len(test), processes.world_size))
    return metrics_from_counts(processes.sum(evaluation_counts(module, part, task)), task)


def fit(
    model: nn.Module,
    data: Dataset,
    settings: TrainSettings,
    teacher: nn.Module | None = None,
    progress: ProgressHook | None = None,
    processes: Processes = Processes(),
    state_file: TrainStateFile | None = None,
) -> list[dict]:
    """Train ``model`` in place on ``processes.device``; with ``teacher``, by KD (temperature/alpha
    from ``settings``). Returns the per-epoch history: epoch, loss, seconds and the test metrics (on
    the epochs ``settings.eval_every`` picks and the last).

    With several processes (``torchrun``), each trains a DistributedDataParallel replica on its shard
    of every epoch, BatchNorm statistics synced, the teacher's KD logits computed for its own
    batches; ``model`` gets the trained weights at the end. With ``state_file``, rank 0 saves the
    training state after every epoch, and a resuming run starts after the last saved epoch.

    Tunes the process's allocator to keep freed tensor memory (:func:`retain_freed_memory`)."""
    retain_freed_memory()
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(_generator_seed(settings.seed, processes.rank))
    train = data.train
    if settings.train_limit is not None:
        train = train.subset(torch.arange(min(settings.train_limit, len(train))))
    shard = -(-len(train) // processes.world_size)  # each process's share (DistributedSampler evens them out)
    steps = -(-shard // -(-settings.batch_size // processes.world_size))
    model.to(processes.device)
    module = synced_copy(model, processes)
    groups = parameter_groups(module, settings)
    optimiser = torch.optim.AdamW(groups, lr=settings.lr, weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, [g["lr"] for g in groups], total_steps=steps * settings.epochs, pct_start=0.15)
    history: list[dict] = []
    saved = state_file.load() if state_file is not None else None
    if saved is not None:
        module.load_state_dict(saved["model"])
        optimiser.load_state_dict(saved["optimiser"])
        schedule.load_state_dict(saved["schedule"])
        generator.set_state(saved["generators"][processes.rank])
        history = list(saved["history"])
    net = data_parallel(module, processes)
    if teacher is not None:
        teacher = inference_copy(teacher).to(processes.device)
    device = processes.device
    for epoch in range(len(history) + 1, settings.epochs + 1):
        net.train()
        start, total, seen = time.perf_counter(), 0.0, 0
        for step, (x, y) in enumerate(_epoch_batches(train, epoch, settings, processes, generator), 1):
            x, y = random_shift(x, y, settings.max_shift, generator)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            lam, partner = 1.0, None
            if settings.mixup > 0 and data.task == "classification":
                lam = float(torch.distributions.Beta(settings.mixup, settings.mixup).sample())
                partner = torch.randperm(len(x), generator=generator).to(device)
                x = lam * x + (1 - lam) * x[partner]
            logits = net(x)
            if teacher is None:
                loss = _mixed(lambda t: F.cross_entropy(logits, t), y, lam, partner)
            else:
                with torch.no_grad():
                    teacher_logits = teacher(x)
                loss = _mixed(lambda t: kd_loss(logits, teacher_logits, t, settings.kd_temperature, settings.kd_alpha), y, lam, partner)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(x)
            seen += len(x)
            if progress is not None:
                progress(epoch, step, steps, total / seen)
        if processes.distributed:
            total, seen = processes.sum(torch.tensor([total, seen], dtype=torch.float64)).tolist()
        metrics = {}
        if epoch % settings.eval_every == 0 or epoch == settings.epochs:
            _recalibrate(module, train, settings, processes)
            metrics = _evaluate(module, data.test, data.task, processes)
        history.append({"epoch": epoch, "loss": total / max(seen, 1), "seconds": time.perf_counter() - start, **metrics})
        if state_file is not None:
            generators = processes.gather(generator.get_state())
            if processes.is_main:
                state_file.save({
                    "model": {k: v.detach().cpu() for k, v in module.state_dict().items()}, "optimiser": optimiser.state_dict(),
                    "schedule": schedule.state_dict(), "generators": generators, "history": history,
                })
    if module is not model:
        model.load_state_dict(module.state_dict())
    model.eval()
    return history
