"""The twin's fast readout path (FourFTwin.read_groups: the input spectrum once for every mask,
cache-sized chunks, camera sampling and tile readout as one sparse matrix, the intensity's gradient
written out) gives what reading each simulated camera frame gives, values and gradients."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

import labctl.optics.twin as twin_module
from drivers.bench import BenchSpec
from labctl.insitu.twin_fit import RefinableTwin
from labctl.models.bench_layout import layout_for_bench
from labctl.models.optics_aware import OpticsAwareConfig, OpticsAwareStudent, ideal_affine
from labctl.optics.propagation import output_intensity
from labctl.optics.readout import channel_points, read_channels
from labctl.optics.twin import FourFTwin
from tests.conftest import bench_toml


@pytest.fixture(scope="module")
def layout():
    return dataclasses.replace(layout_for_bench(BenchSpec.from_toml(bench_toml()), 16, 4), input_leak=0.03)


def _op_by_op(spectrum, transmission, added):
    field = torch.fft.fft2(spectrum * transmission, norm="ortho")
    if added is not None:
        field = field + added
    return field.real.square() + field.imag.square()


@pytest.mark.parametrize("shapes", [
    ((3, 6, 8), (6, 8), (6, 8)),  # a batch through one mask, with a leak field
    ((3, 6, 8), (3, 6, 8), None),  # a mask per frame, nothing added
    ((2, 3, 6, 8), (6, 8), (1, 6, 8)),  # two leading dimensions, an added field broadcast along one
])
def test_output_intensity_and_its_gradient_are_the_op_by_op_ones(shapes) -> None:
    g = torch.Generator().manual_seed(0)
    inputs = [None if s is None else torch.randn(*s, dtype=torch.complex64, generator=g).requires_grad_() for s in shapes]
    weight = torch.randn(*shapes[0], generator=g)
    given = [t for t in inputs if t is not None]
    ours = torch.autograd.grad((output_intensity(*inputs) * weight).sum(), given)
    reference = torch.autograd.grad((_op_by_op(*inputs) * weight).sum(), given)
    torch.testing.assert_close(output_intensity(*inputs), _op_by_op(*inputs))
    for a, b in zip(ours, reference):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def _phase_parameters(layout, n: int, seed: int) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.rand(layout.fourier_rows, layout.fourier_cols, generator=g) * 6) for _ in range(n)]


def _by_frames(twin, patch, phases, points, origin):
    return [read_channels(twin(patch, phase, origin), at, 2) for phase, at in zip(phases, points)]


def test_read_groups_reads_what_each_frame_reads_in_chunks(layout, monkeypatch) -> None:
    """Two masks (the second reading fewer tiles, as a multiplexed layout's last group), five images in
    chunks of two, the leak and a gain on: the same readouts, and the same gradients for the masks and
    the gain, as sampling each camera frame and reading its tiles."""
    twin = FourFTwin(layout, image_only=True)
    rows, cols = twin.grid.shape
    monkeypatch.setattr(twin_module, "CHUNK_BYTES", 2 * rows * cols * 8 + 1)  # two images' complex fields
    assert twin_module._images_per_chunk(twin.grid.shape, torch.zeros(1)) == 2
    with torch.no_grad():
        twin.log_gain.fill_(0.3)
    twin.log_gain.requires_grad_(True)
    side = layout.image_size * layout.image_scale
    patch = torch.rand(5, side, side, generator=torch.Generator().manual_seed(1))
    origin = (layout.image_row, layout.image_col)
    points = channel_points(layout, ideal_affine(layout))
    groups = [points, points[:2]]
    weights = [torch.randn(5, 4, 16, 16), torch.randn(5, 2, 16, 16)]
    results = []
    for read in (lambda ph: twin.read_groups(patch, ph, groups, 2, origin), lambda ph: _by_frames(twin, patch, ph, groups, origin)):
        phases = _phase_parameters(layout, 2, seed=2)
        twin.log_gain.grad = None
        readouts = read(phases)
        sum((r * w).sum() for r, w in zip(readouts, weights)).backward()
        results.append(([r.detach() for r in readouts], [p.grad for p in phases], twin.log_gain.grad.clone()))
    (fast, fast_grads, fast_gain), (slow, slow_grads, slow_gain) = results
    for a, b in zip(fast, slow):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * float(b.abs().max()))
    for a, b in zip(fast_grads, slow_grads):
        assert float((a - b).norm() / b.norm()) < 1e-4
    torch.testing.assert_close(fast_gain, slow_gain, rtol=1e-4, atol=0)


def test_read_follows_the_pose_and_fits_it_through_the_frames(layout) -> None:
    """A readout kept for one pose is not reused at another; while the pose is being fitted the frames
    are sampled (its gradient flows), with the same readouts."""
    twin = FourFTwin(layout)
    amplitude = torch.rand(2, layout.input_rows, layout.input_cols, generator=torch.Generator().manual_seed(3))
    phase = _phase_parameters(layout, 1, seed=4)[0].detach()
    points = channel_points(layout, ideal_affine(layout))
    first = twin.read(amplitude, phase, points)
    with torch.no_grad():
        twin.shift.copy_(torch.tensor([40.0, -25.0]))  # µm: a few camera pixels
        twin.rotation.fill_(0.01)
        moved = read_channels(twin(amplitude, phase), points, 2)
    fast = twin.read(amplitude, phase, points).detach()
    assert float((fast - first).abs().max()) > 0.05 * float(first.abs().max())  # the pose matters here
    torch.testing.assert_close(fast, moved, rtol=1e-4, atol=1e-5 * float(moved.abs().max()))
    twin.fit_parameters(("shift",))
    fitted = twin.read(amplitude, phase, points)
    fitted.sum().backward()
    assert twin.shift.grad is not None and float(twin.shift.grad.abs().sum()) > 0
    torch.testing.assert_close(fitted.detach(), moved, rtol=1e-4, atol=1e-5 * float(moved.abs().max()))


def test_a_refinable_twin_reads_through_its_own_camera(layout) -> None:
    """The refinable twin's camera is more than a sampled plane (here: its lens distortion)."""
    twin = RefinableTwin(layout)
    with torch.no_grad():
        twin.distortion.copy_(torch.tensor([0.05, 0.0]))
    amplitude = torch.rand(2, layout.input_rows, layout.input_cols, generator=torch.Generator().manual_seed(5))
    phase = _phase_parameters(layout, 1, seed=6)[0].detach()
    points = channel_points(layout, ideal_affine(layout))
    with torch.no_grad():
        torch.testing.assert_close(twin.read(amplitude, phase, points), read_channels(twin(amplitude, phase), points, 2))
    with pytest.raises(ValueError, match="2 phase masks but 1 sets"):
        twin.read_groups(amplitude, [phase, phase], [points])


def test_an_optics_aware_student_reads_the_same_after_a_copy(layout) -> None:
    config = OpticsAwareConfig("classification", 1, 16, 10, layout=layout.to_dict(), hidden=16, backend_pool=4)
    student = OpticsAwareStudent(config).eval()
    images = torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        before = student(images)
        copied = copy.deepcopy(student)
        torch.testing.assert_close(copied(images), before)


def test_output_intensity_takes_real_factors_and_a_wider_added_field() -> None:
    """A real amplitude (a real spectrum factor) gets a real gradient; an added field with more
    leading dimensions than the product broadcasts; a second derivative is refused, not wrong."""
    g = torch.Generator().manual_seed(5)
    spectrum = torch.randn(6, 8, generator=g).requires_grad_()  # real
    transmission = torch.randn(6, 8, dtype=torch.complex64, generator=g).requires_grad_()
    added = torch.randn(3, 6, 8, dtype=torch.complex64, generator=g).requires_grad_()
    weight = torch.randn(3, 6, 8, generator=g)
    ours = torch.autograd.grad((output_intensity(spectrum, transmission, added) * weight).sum(), (spectrum, transmission, added))
    reference = torch.autograd.grad((_op_by_op(spectrum, transmission, added) * weight).sum(), (spectrum, transmission, added))
    assert not ours[0].is_complex()
    for a, b in zip(ours, reference):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    first = torch.autograd.grad(output_intensity(spectrum, transmission).sum(), transmission, create_graph=True)[0]
    with pytest.raises(RuntimeError, match="does not require grad"):  # once differentiable: no graph to differentiate again
        torch.autograd.grad(first.abs().sum(), transmission)
