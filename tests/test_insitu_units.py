"""In-situ building blocks: the capture cache saves bench time; back-end fine-tuning learns from bench data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from labctl.insitu.backend_ft import BackendFineTuneConfig, accuracy, finetune_back_end
from labctl.insitu.capture_cache import CaptureCache, CaptureCacheError, capture_key


def test_cache_captures_only_what_it_has_not_seen_and_survives_reopening(tmp_path: Path) -> None:
    calls = []

    def capture(indices: np.ndarray) -> np.ndarray:
        calls.append(indices.tolist())
        return np.stack([np.full((4, 5), i, np.uint16) for i in indices])

    key = capture_key("digits", "train", np.zeros((3, 3), np.uint16), 1e-3)
    with CaptureCache(tmp_path / "c.h5", (4, 5)) as cache:
        a = cache.get_or_capture(key, np.array([5, 2, 9]), capture)
        b = cache.get_or_capture(key, np.array([9, 7, 5]), capture)
    assert calls == [[5, 2, 9], [7]]
    assert [int(f[0, 0]) for f in a] == [5, 2, 9] and [int(f[0, 0]) for f in b] == [9, 7, 5]
    with CaptureCache(tmp_path / "c.h5", (4, 5)) as cache:
        cache.get_or_capture(key, np.array([2, 7]), capture)
        assert cache.hits == 2 and cache.misses == 0
        other = capture_key("digits", "train", np.ones((3, 3), np.uint16), 1e-3)
        assert other != key and cache.cached(other) == {}
    with CaptureCache(tmp_path / "c.h5", (8, 8)) as cache, pytest.raises(CaptureCacheError, match="cached frames are"):
        cache.get_or_capture(key, np.array([2]), capture)


def test_a_capture_cut_short_leaves_nothing_that_pairs_a_wrong_frame(tmp_path: Path) -> None:
    key = capture_key("digits", "test", np.zeros((2, 2), np.uint16), 1e-3)
    with CaptureCache(tmp_path / "c.h5", (4, 4), chunk=2) as cache:
        def capture(indices: np.ndarray) -> np.ndarray:
            if 7 in indices:
                raise KeyboardInterrupt  # the operator stops the capture half way
            return np.stack([np.full((4, 4), i + 1, np.uint16) for i in indices])

        with pytest.raises(KeyboardInterrupt):
            cache.get_or_capture(key, np.array([3, 4, 7, 8]), capture)
        assert cache.cached(key) == {3: 0, 4: 1}  # the first chunk was kept
        group = cache._h5[key]
        group["frames"].resize((3, 4, 4))  # a frame written, its index not: as after a kill
        group["indices"].resize((3,))
        assert cache.cached(key) == {3: 0, 4: 1}
        frames = cache.get_or_capture(key, np.array([4, 3, 0]), lambda idx: np.stack([np.full((4, 4), i + 1, np.uint16) for i in idx]))
    assert [int(f[0, 0]) for f in frames] == [5, 4, 1]


def _trained_back_end(n: int, seed: int, steps: int, channels: int = 4):
    """Features (n, C, 3, 3) whose class channel is bright, their labels, and a back end trained on them."""
    torch.manual_seed(seed)
    labels = torch.randint(0, 3, (n,))
    feats = torch.randn(n, channels, 3, 3) * 0.3
    feats[torch.arange(n), labels] += 1.0
    back = nn.Sequential(nn.BatchNorm2d(channels), nn.Flatten(), nn.Linear(channels * 9, 3))
    opt = torch.optim.Adam(back.parameters(), 1e-2)
    for _ in range(steps):
        back.train()
        loss = nn.functional.cross_entropy(back(feats), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return feats, labels, back


def test_backend_finetuning_adapts_to_a_distorted_readout() -> None:
    """A back end trained on clean features fails on a scaled, offset, mixed version; fine-tuning recovers."""
    clean, labels, back = _trained_back_end(400, 0, steps=200)
    distorted = 3.0 * clean.roll(1, dims=1) + 0.5
    before = accuracy(back, distorted, labels)
    tuned = finetune_back_end(back, distorted[:200], labels[:200], None, BackendFineTuneConfig(epochs=80, batch_size=100, lr=5e-3))
    after = accuracy(tuned, distorted[200:], labels[200:])
    assert accuracy(back, clean, labels) > 0.95 and before < 0.6 and after > 0.9
    assert accuracy(back, distorted, labels) == before  # the original is untouched


def test_validated_finetuning_keeps_the_back_end_when_retraining_hurts() -> None:
    from labctl.insitu.backend_ft import finetune_validated

    feats, labels, back = _trained_back_end(200, 1, steps=100)
    good = accuracy(back, feats, labels)
    # a weight decay far too strong wipes the back end out: the held-back frames show it, and it is not used
    kept, info = finetune_validated(back, feats, labels, None, BackendFineTuneConfig(epochs=5, batch_size=50, lr=1e-2, weight_decay=90.0))
    assert not info["accepted"] and accuracy(kept, feats, labels) == good
    tuned, info = finetune_validated(back, 2.0 * feats.roll(1, dims=1), labels, None, BackendFineTuneConfig(epochs=30, batch_size=50, lr=5e-3))
    assert info["accepted"] and info["validation_after"] > info["validation_before"]


class _RunsCodeWhenUnpickled:
    """An object whose unpickling calls a function: what a hostile state file would hold."""

    def __reduce__(self):
        return (Path.touch, (_RunsCodeWhenUnpickled.marker,))


def test_a_state_file_that_would_run_code_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    from labctl.insitu.session import FineTuneError, _load_plain_state

    _RunsCodeWhenUnpickled.marker = tmp_path / "code-ran"
    state = tmp_path / "state.pt"
    torch.save({"stage": "measure", "identity": {}, "payload": _RunsCodeWhenUnpickled()}, state)
    with pytest.raises(FineTuneError, match="state.pt is not a fine-tuning state file of tensors and plain data"):
        _load_plain_state(state)
    assert not _RunsCodeWhenUnpickled.marker.exists()
    torch.load(state, weights_only=False)  # the same file, unpickled without restriction, does run the code
    assert _RunsCodeWhenUnpickled.marker.exists()


def test_state_is_saved_as_plain_data_and_read_back(tmp_path: Path) -> None:
    from labctl.insitu.session import FineTuneError, _load_plain_state, _plain

    state = {"stage": "pat", "identity": {"seed": 0}, "scale": {"gain": np.float64(2.0)},
             "phase": np.zeros((2, 3), np.float32), "twin_affine": ([1.0], [0.0])}
    torch.save(_plain(state), tmp_path / "state.pt")
    back = _load_plain_state(tmp_path / "state.pt")
    assert back["scale"]["gain"] == 2.0 and torch.equal(back["phase"], torch.zeros(2, 3))
    torch.save({"stage": "unknown", "identity": {}}, tmp_path / "other.pt")
    with pytest.raises(FineTuneError, match="no identity or stage"):
        _load_plain_state(tmp_path / "other.pt")


def test_each_pass_takes_a_fresh_tenth_of_the_training_set_until_it_is_used_up() -> None:
    from labctl.insitu.session import pass_subset

    passes = [pass_subset(100, 0.1, 3, k) for k in range(12)]
    assert all(p.size == 10 and np.all(np.diff(p) > 0) for p in passes)  # one pass over 10 %, sorted, no repeats
    assert np.array_equal(np.sort(np.concatenate(passes[:10])), np.arange(100))  # 10 passes: every input once
    assert np.array_equal(passes[0], np.sort(np.random.default_rng(3).permutation(100)[:10]))  # pass 0: the old subset
    assert not np.array_equal(passes[10], passes[0])  # then a new permutation
    assert np.array_equal(pass_subset(100, 0.1, 3, 4), passes[4])  # the same pass after a resume
    assert pass_subset(7, 0.1, 0, 5).size == 2 and pass_subset(5, 1.0, 0, 2).size == 5


def test_the_finetune_command_defaults_to_the_trainers_epochs() -> None:
    """``labctl finetune --epochs`` states PATConfig's default as a literal (the CLI imports no torch)."""
    from labctl.cli.finetune import finetune_command
    from labctl.insitu.pat import PATConfig

    epochs = next(p for p in finetune_command.params if p.name == "epochs")
    assert epochs.default == PATConfig.epochs
