"""KD losses, augmentation, and the training loop on a small budget."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from labctl.data import load_dataset
from labctl.data.dataset import Split
from labctl.training.augment import random_shift
from labctl.training.kd import kd_loss, pixel_kd_loss, soft_target_loss
from labctl.training.loop import TrainSettings
from labctl.training.metrics import agreement, predict_logits
from labctl.training.train import train_student, train_teacher


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_kd_loss_mixes_soft_and_hard_targets() -> None:
    torch.manual_seed(0)
    s, t, y = torch.randn(8, 10), torch.randn(8, 10), torch.randint(0, 10, (8,))
    assert torch.allclose(kd_loss(s, t, y, T=4, alpha=0.0), F.cross_entropy(s, y))
    kl = F.kl_div(F.log_softmax(s / 4, 1), F.softmax(t / 4, 1), reduction="batchmean") * 16
    assert torch.allclose(kd_loss(s, t, y, T=4, alpha=1.0), kl, atol=1e-6)
    assert torch.allclose(kd_loss(s, t, y, 10, 0.5), 0.5 * soft_target_loss(s, t, 10) + 0.5 * F.cross_entropy(s, y))
    assert float(soft_target_loss(t, t, 3.0)) == pytest.approx(0.0, abs=1e-6)


def test_kd_gradient_pulls_the_student_towards_the_teacher() -> None:
    t = torch.tensor([[3.0, 0.0, -1.0]])
    s = torch.zeros(1, 3, requires_grad=True)
    kd_loss(s, t, torch.tensor([1]), T=2.0, alpha=1.0).backward()
    assert s.grad[0, 0] < 0 < s.grad[0, 2]  # gradient descent raises logit 0, lowers logit 2


def test_pixel_kd_is_the_per_pixel_loss() -> None:
    s, t = torch.randn(2, 3, 5, 5), torch.randn(2, 3, 5, 5)
    masks = torch.randint(0, 3, (2, 5, 5))
    flat = lambda z: z.permute(0, 2, 3, 1).reshape(-1, 3)  # noqa: E731
    assert torch.allclose(pixel_kd_loss(s, t, masks, 2.0, 0.7), kd_loss(flat(s), flat(t), masks.reshape(-1), 2.0, 0.7), atol=1e-5)
    with pytest.raises(ValueError, match="pixel-wise KD needs"):
        pixel_kd_loss(s[:, :, 0], t[:, :, 0], masks[:, 0], 2.0, 0.5)


@pytest.mark.parametrize("T, alpha", [(0.0, 0.5), (4.0, 1.5)])
def test_bad_kd_settings(T: float, alpha: float) -> None:
    with pytest.raises(ValueError, match="KD"):
        kd_loss(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), T, alpha)


class _Brightness(torch.nn.Module):
    """Class 0 where the image (or, per pixel, the pixel) is brighter than ``level``, else class 1."""

    def __init__(self, level: float, per_pixel: bool = False) -> None:
        super().__init__()
        self.level, self.per_pixel = level, per_pixel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = x[:, 0] if self.per_pixel else x.mean(dim=(1, 2, 3))
        return torch.stack([v - self.level, self.level - v], dim=1)


def test_agreement_counts_matching_predictions_right_or_wrong() -> None:
    levels = torch.tensor([10, 60, 110, 160, 210], dtype=torch.uint8)  # /255: 0.04 ... 0.82
    split = Split(levels[:, None, None, None].expand(5, 1, 4, 4).clone(), torch.zeros(5, dtype=torch.long))
    at = lambda level, data=split, per_pixel=False: predict_logits(_Brightness(level, per_pixel), data, batch_size=2)  # noqa: E731
    assert agreement(at(0.5), at(0.5)) == 1.0
    assert agreement(at(0.5), at(0.3)) == pytest.approx(4 / 5)  # 110 differs
    assert agreement(at(0.5), at(0.9)) == pytest.approx(3 / 5)
    image = torch.arange(16, dtype=torch.uint8).reshape(1, 1, 4, 4) * 16  # one image, 16 pixel levels
    pixels = Split(image, torch.zeros(1, 4, 4, dtype=torch.long))
    assert agreement(at(0.5, pixels, True), at(0.25, pixels, True)) == pytest.approx(12 / 16)
    with pytest.raises(ValueError, match="differ"):
        agreement(at(0.5), at(0.5, pixels, True))


def test_random_shift_moves_masks_with_images() -> None:
    images = torch.zeros(4, 1, 10, 10)
    images[:, :, 4:6, 4:6] = 1.0
    masks = (images[:, 0] > 0).long()
    shifted, shifted_masks = random_shift(images, masks, 2, torch.Generator().manual_seed(0))
    assert torch.equal((shifted[:, 0] > 0).long(), shifted_masks)
    assert not torch.equal(shifted, images)


def test_teacher_and_students_learn_digits_on_a_small_budget() -> None:
    torch.manual_seed(0)
    data = load_dataset("digits", size=16)
    settings = TrainSettings(epochs=3, train_limit=600, batch_size=64, lr=1e-2)
    teacher = train_teacher(data, settings, width=16, depth=3)
    assert teacher.metrics["accuracy"] > 0.3 and len(teacher.history) == 3
    student = train_student(data, teacher.model, settings, channels=(8,), hidden=32, backend_pool=4)
    assert student.metrics["accuracy"] > 0.3
    linear = train_student(data, None, settings, kind="linear")
    assert linear.metrics["accuracy"] > 0.2


def test_segmentation_trains_with_pixel_kd() -> None:
    data = load_dataset("shapes", size=24)
    settings = TrainSettings(epochs=1, train_limit=96, batch_size=32)
    teacher = train_teacher(data, settings, width=4)
    student = train_student(data, teacher.model, settings, channels=(4,), hidden=8)
    assert set(student.metrics) == {"iou", "dice"}
    assert 0.0 <= student.metrics["iou"] <= student.metrics["dice"] <= 1.0


def test_mixup_mixes_labels_with_images() -> None:
    from labctl.training.loop import _mixed

    logits = torch.randn(4, 3)
    y = torch.tensor([0, 1, 2, 0])
    partner = torch.tensor([1, 0, 3, 2])
    expected = 0.3 * F.cross_entropy(logits, y) + 0.7 * F.cross_entropy(logits, y[partner])
    assert torch.allclose(_mixed(lambda t: F.cross_entropy(logits, t), y, 0.3, partner), expected)
    data = load_dataset("digits", size=12)
    result = train_student(data, None, TrainSettings(epochs=1, train_limit=64, batch_size=32, mixup=0.4), channels=(2,), hidden=8, backend_pool=3)
    assert 0.0 <= result.metrics["accuracy"] <= 1.0


def test_spectral_filters_train_at_their_own_learning_rate() -> None:
    from labctl.training.loop import parameter_groups
    from labctl.training.train import student_for, teacher_for

    data = load_dataset("digits", size=12)
    student = student_for(data, "sclc", channels=(2,), hidden=8, backend_pool=3)
    settings = TrainSettings(lr=1e-3, weight_decay=1e-4, spectral_lr_scale=8.0)
    back, front = parameter_groups(student, settings)
    assert {id(p) for p in front["params"]} == {id(p) for p in student.front.parameters()}
    assert (front["lr"], front["weight_decay"]) == (8e-3, 1.25e-5) and back["lr"] == 1e-3
    assert len(back["params"]) + len(front["params"]) == len(list(student.parameters()))
    # a teacher has no spectral layers: one group at the common rate
    assert [g["lr"] for g in parameter_groups(teacher_for(data, width=4), settings)] == [1e-3]
    with pytest.raises(ValueError, match="the spectral and phase learning-rate scales must be positive"):
        TrainSettings(spectral_lr_scale=0.0)


def test_testing_less_often_trains_the_same_model() -> None:
    """``eval_every``: the test (and the BatchNorm re-estimate before it) on fewer epochs, always after
    the last; the trained weights and final metrics are those of a test after every epoch."""
    from labctl.training.loop import TrainingSettingsError, fit
    from labctl.training.train import student_for

    data = load_dataset("digits", size=16)
    runs = {}
    for every in (1, 3):
        model = student_for(data, "sclc", channels=(4,), hidden=16, backend_pool=4)
        history = fit(model, data, TrainSettings(epochs=3, train_limit=300, batch_size=64, lr=1e-2, eval_every=every))
        runs[every] = (model, history)
    (each, each_history), (last, last_history) = runs[1], runs[3]
    assert all("accuracy" in h for h in each_history)
    assert ["accuracy" in h for h in last_history] == [False, False, True]
    assert last_history[-1]["accuracy"] == each_history[-1]["accuracy"]
    for a, b in zip(each.state_dict().values(), last.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(TrainingSettingsError, match="eval_every"):
        TrainSettings(eval_every=0)
