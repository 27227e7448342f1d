"""An optics-aware student started from an SCLC student, and the phase's own learning rate."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from drivers.bench import BenchSpec
from labctl.masks.encoding import double_phase
from labctl.masks.filter_bank import fourier_masks
from labctl.masks.iterative import group_regions, iterative_phase
from labctl.models.bench_layout import layout_for_bench
from labctl.models.optics_aware import OpticsAwareConfig, OpticsAwareStudent
from labctl.models.student import SCLCStudent, StudentConfig
from labctl.optics.layout import OpticalLayout
from labctl.training.errors import TrainingSettingsError
from labctl.training.loop import TrainSettings, parameter_groups
from labctl.training.warm_start import optics_aware_from_sclc
from tests.conftest import bench_toml

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SIZE, CHANNELS = 12, 6


@pytest.fixture(scope="module")
def layout() -> OpticalLayout:
    return layout_for_bench(BenchSpec.from_toml(bench_toml(ideal=True, noise=False)), SIZE, CHANNELS)


def _sclc(channels: int = CHANNELS, **kw) -> SCLCStudent:
    torch.manual_seed(0)
    return SCLCStudent(StudentConfig("classification", 1, SIZE, 10, channels=[channels], backend_pool=4, hidden=16, **kw))


def _correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over channels of the correlation of two (B, C, n, n) detections."""
    return float(np.mean([np.corrcoef(a[:, c].reshape(-1).numpy(), b[:, c].reshape(-1).numpy())[0, 1] for c in range(a.shape[1])]))


@pytest.mark.parametrize("kernel_support", [0, 3])  # free filters: the region is the whole window; 3 px: part of it
def test_the_started_student_shows_the_sclc_filters_and_has_its_back_end(layout: OpticalLayout, kernel_support: int) -> None:
    sclc = _sclc(kernel_support=kernel_support)
    student = optics_aware_from_sclc(sclc, layout)
    masks = fourier_masks(sclc.front.collapse().detach(), layout)
    regions = group_regions(layout, sclc.front.kernel_extent if kernel_support else 0)
    assert (regions[0].mean() == 1.0) == (kernel_support == 0)
    expected = [iterative_phase(m, region, np.angle(m))[0] for m, region in zip(masks, regions)]
    assert not student.phase.bounded  # an ideal panel: the phase is free, the start exact
    with torch.no_grad():
        phase = student.phase().numpy()
    np.testing.assert_allclose(phase if phase.ndim == 3 else phase[None], np.stack(expected), atol=1e-5)
    for name, value in sclc.back.state_dict().items():
        assert torch.equal(student.back.state_dict()[name], value), name
    # what the tiles read now follows the SCLC student's detection far better than a fresh student's does
    x = torch.rand(8, 1, SIZE, SIZE)
    with torch.no_grad():
        target = sclc.detected(x)
        started = _correlation(student.detected(x), target)
        fresh = _correlation(OpticsAwareStudent(student.config, seed=0).detected(x), target)
        closed_form = OpticsAwareStudent(student.config, seed=0)
        closed_form.back.load_state_dict(student.back.state_dict())
        closed_form.set_phase(torch.from_numpy(np.stack([double_phase(m)[0] for m in masks]).squeeze(0)).float())
        double = _correlation(closed_form.detected(x), target)
    assert started > 0.4 and started > fresh + 0.3, (started, fresh)
    assert started > double, (started, double)  # why the start is the iterative encoding, not the double-phase one


def test_a_student_that_does_not_fit_the_layout_is_refused_with_the_reasons(layout: OpticalLayout) -> None:
    with pytest.raises(TrainingSettingsError, match=f"it has 3 channels and the layout {CHANNELS}"):
        optics_aware_from_sclc(_sclc(channels=3), layout)
    with pytest.raises(TrainingSettingsError, match="field detection"):
        optics_aware_from_sclc(_sclc(detection="field"), layout)


def test_the_phase_learns_at_its_own_rate_without_weight_decay(layout: OpticalLayout) -> None:
    student = OpticsAwareStudent(OpticsAwareConfig("classification", 1, SIZE, 10, layout=layout.to_dict(), backend_pool=4, hidden=16))
    settings = TrainSettings(lr=1e-3, weight_decay=1e-4, phase_lr_scale=40.0)
    groups = parameter_groups(student, settings)
    (phase_group,) = [g for g in groups if any(p is student.phase.value for p in g["params"])]
    assert phase_group["params"] == [student.phase.value]
    assert phase_group["lr"] == pytest.approx(4e-2) and phase_group["weight_decay"] == 0.0
    others = [p for g in groups if g is not phase_group for p in g["params"]]
    assert len(others) == sum(1 for p in student.parameters() if p.requires_grad) - 1
    with pytest.raises(TrainingSettingsError, match="phase learning-rate"):
        TrainSettings(phase_lr_scale=0.0)
