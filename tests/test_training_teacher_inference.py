"""The teacher copy KD runs: same logits as the teacher, BatchNorm folded away, teacher untouched."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from labctl.data import load_dataset
from labctl.models.teacher import TeacherCNN, TeacherConfig, UNetConfig, UNetTeacher
from labctl.training.loop import TrainSettings, fit
from labctl.training.teacher_inference import inference_copy
from labctl.training.train import student_for, teacher_for

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _trained_like(model: nn.Module) -> nn.Module:
    """Non-trivial BatchNorm statistics and affine parameters, as after training."""
    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.5, 0.5)
    return model.eval()


@pytest.mark.parametrize(
    "teacher",
    [
        TeacherCNN(TeacherConfig("classification", 1, 16, 10, depth=2, width=4, hidden=8, convs=2)),
        UNetTeacher(UNetConfig("segmentation", 1, 16, 2, levels=1, width=4)),
    ],
    ids=["cnn", "unet"],
)
def test_inference_copy_gives_the_teachers_logits_without_batchnorm(teacher: nn.Module) -> None:
    teacher = _trained_like(teacher)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    fast = inference_copy(teacher)
    x = torch.rand(5, 1, 16, 16)
    with torch.no_grad():
        assert torch.allclose(fast(x), teacher(x), atol=1e-5)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    assert not fast.training and not any(p.requires_grad for p in fast.parameters())
    assert any(isinstance(m, nn.BatchNorm2d) for m in teacher.modules())
    assert all(torch.equal(v, before[k]) for k, v in teacher.state_dict().items())


def test_kd_training_leaves_the_teacher_as_it_was() -> None:
    """A teacher passed to KD in train mode would update its BatchNorm statistics on every student
    batch; KD must use the frozen copy and leave the teacher's weights, statistics and mode alone."""
    data = load_dataset("digits", 16)
    teacher = teacher_for(data, depth=2, width=4, hidden=8).train()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student = student_for(data, channels=(2,), hidden=8, backend_pool=4)
    fit(student, data, TrainSettings(epochs=1, batch_size=32, train_limit=64), teacher)
    assert teacher.training
    assert all(torch.equal(v, before[k]) for k, v in teacher.state_dict().items())
