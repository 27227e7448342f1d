"""Training in several processes: DistributedSampler shards, BatchNorm synced over gloo, epoch-level
resume, and `torchrun --nproc-per-node 2 -m labctl train` against one process on the digits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from labctl.data import load_dataset
from labctl.models.checkpoint import load_checkpoint
from labctl.training.distributed import TORCHRUN_VARIABLES, Processes, training_processes
from labctl.training.loop import TrainSettings
from labctl.training.resume import STATE_NAME, ResumeError
from labctl.training.sync_batchnorm import GlooSyncBatchNorm, sync_batchnorms
from labctl.training.train import train_teacher

ROOT = Path(__file__).resolve().parents[1]


def test_shards_cover_the_data_evenly_and_reshuffle_every_epoch() -> None:
    ranks = [Processes(rank=r, world_size=2) for r in range(2)]
    first = [p.shard_order(11, epoch=1, seed=0) for p in ranks]
    assert [len(s) for s in first] == [6, 6] and set(torch.cat(first).tolist()) == set(range(11))
    assert not torch.equal(first[0], ranks[0].shard_order(11, epoch=2, seed=0))
    assert torch.equal(first[0], ranks[0].shard_order(11, epoch=1, seed=0))


@pytest.mark.parametrize("fails", [False, True])
def test_ranks_meet_before_the_group_is_torn_down_unless_one_failed(mocker, monkeypatch, fails: bool) -> None:
    for name, value in zip(TORCHRUN_VARIABLES, ("1", "2", "1")):  # rank 1 of 2
        monkeypatch.setenv(name, value)
    calls = mocker.MagicMock()
    for name in ("init_process_group", "barrier", "destroy_process_group"):
        mocker.patch.object(dist, name, getattr(calls, name))
    try:
        with training_processes(torch.device("cpu")) as processes:
            assert (processes.rank, processes.world_size) == (1, 2)
            if fails:
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        assert fails
    # a rank that failed tears down at once (the others may never reach a barrier); else all meet first
    expected = ["init_process_group", "destroy_process_group"] if fails else ["init_process_group", "barrier", "destroy_process_group"]
    assert [name for name, *_ in calls.mock_calls] == expected


def _synced_batchnorm_rank(rank: int, store: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        torch.manual_seed(0)
        x = torch.randn(8, 3, 5, 5) * 3 + 1
        weights = torch.randn(8, 3, 5, 5)
        norm = sync_batchnorms(nn.Sequential(nn.BatchNorm2d(3)), torch.device("cpu"))
        with torch.no_grad():
            norm[0].weight.uniform_(0.5, 2)
            norm[0].bias.uniform_(-1, 1)
        local = x[4 * rank : 4 * rank + 4].clone().requires_grad_(True)
        y = norm(local)
        (y * weights[4 * rank : 4 * rank + 4]).sum().backward()
        torch.save({"y": y.detach(), "dx": local.grad, "dw": norm[0].weight.grad, "mean": norm[0].running_mean,
                    "var": norm[0].running_var, "synced": isinstance(norm[0], GlooSyncBatchNorm)}, f"{out}/{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_gloo_synced_batchnorm_is_one_batchnorm_over_all_processes(tmp_path: Path) -> None:
    mp.start_processes(_synced_batchnorm_rank, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=2, start_method="fork")
    parts = [torch.load(tmp_path / f"{r}.pt", weights_only=True) for r in range(2)]
    torch.manual_seed(0)
    x = (torch.randn(8, 3, 5, 5) * 3 + 1).requires_grad_(True)
    weights = torch.randn(8, 3, 5, 5)
    norm = nn.BatchNorm2d(3)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2)
        norm.bias.uniform_(-1, 1)
    y = norm(x)
    (y * weights).sum().backward()
    assert all(p["synced"] for p in parts)
    torch.testing.assert_close(torch.cat([p["y"] for p in parts]), y.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.cat([p["dx"] for p in parts]), x.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(parts[0]["dw"] + parts[1]["dw"], norm.weight.grad, rtol=1e-4, atol=1e-4)
    for p in parts:
        torch.testing.assert_close(p["mean"], norm.running_mean)
        torch.testing.assert_close(p["var"], norm.running_var)


class _Interrupt(Exception):
    pass


def _stop_at_epoch(epoch_to_stop: int):  # noqa: ANN202 - a progress hook
    def hook(epoch: int, step: int, steps: int, loss: float) -> None:
        if epoch == epoch_to_stop:
            raise _Interrupt

    return hook


def test_an_interrupted_run_resumes_from_its_last_epoch_to_the_same_result(tmp_path: Path) -> None:
    data = load_dataset("digits", 16)
    settings = TrainSettings(epochs=3, batch_size=64, train_limit=320, seed=3)
    arch = {"width": 8, "depth": 2}
    whole = train_teacher(data, settings, tmp_path / "whole", **arch)
    assert not (tmp_path / "whole" / STATE_NAME).exists()  # removed once the checkpoint is written
    with pytest.raises(_Interrupt):
        train_teacher(data, settings, tmp_path / "cut", _stop_at_epoch(3), **arch)
    state = torch.load(tmp_path / "cut" / STATE_NAME, weights_only=True)
    assert [h["epoch"] for h in state["history"]] == [1, 2]
    with pytest.raises(ResumeError, match="other settings"):
        train_teacher(data, TrainSettings(epochs=3, batch_size=64, train_limit=320, seed=3, lr=1e-3), tmp_path / "cut", resume=True, **arch)
    resumed = train_teacher(data, settings, tmp_path / "cut", resume=True, **arch)
    assert [{k: v for k, v in h.items() if k != "seconds"} for h in resumed.history] == [
        {k: v for k, v in h.items() if k != "seconds"} for h in whole.history
    ]
    for (name, a), (_, b) in zip(whole.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), name
    with pytest.raises(ResumeError, match="nothing to resume"):
        train_teacher(data, settings, tmp_path / "cut", resume=True, **arch)


def test_a_state_file_holding_objects_is_refused_not_unpickled(tmp_path: Path) -> None:
    torch.save({"format": "labctl-train-state", "payload": _Interrupt()}, tmp_path / STATE_NAME)
    with pytest.raises(ResumeError, match="tensors and plain data"):
        train_teacher(load_dataset("digits", 16), TrainSettings(epochs=1, train_limit=64), tmp_path, resume=True, width=8, depth=2)


def _labctl(*args: str, processes: int = 1) -> subprocess.CompletedProcess:
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"] if processes > 1 else []
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *launcher, "-m", "labctl", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_torchrun_with_two_gloo_processes_matches_one_process(tmp_path: Path) -> None:
    args = ["train", "teacher", "--data", "digits", "--epochs", "4", "--device", "cpu"]
    one = _labctl(*args, "--out", str(tmp_path / "one"))
    two = _labctl(*args, "--out", str(tmp_path / "two"), processes=2)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    reports = [line for line in two.stdout.splitlines() if line.startswith("{")]
    assert len(reports) == 1  # rank 0 alone reports (and writes)
    single, distributed = load_checkpoint(tmp_path / "one"), load_checkpoint(tmp_path / "two")
    assert {k: v.shape for k, v in single.model.state_dict().items()} == {k: v.shape for k, v in distributed.model.state_dict().items()}
    assert len(distributed.meta["history"]) == 4 and not (tmp_path / "two" / STATE_NAME).exists()
    accuracy = json.loads(reports[0])["accuracy"]
    assert accuracy == distributed.meta["metrics"]["accuracy"]
    assert abs(accuracy - single.meta["metrics"]["accuracy"]) <= 0.02
