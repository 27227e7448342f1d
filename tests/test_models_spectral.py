"""The SCLC student is linear up to the detector, and its collapsed filter bank is the stack."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from labctl.models.backend import AveragePool, ClassifierBackEnd
from labctl.models.detection import Detector
from labctl.models.spectral import SpectralStack, apply_filter_bank, kernel_spectrum
from labctl.models.student import SCLCStudent, StudentConfig, all_linear_config
from labctl.models.teacher import TeacherCNN, TeacherConfig, UNetConfig, UNetTeacher


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize(
    "in_channels, channels, pool, size",
    [(1, [16], [1], 28), (1, [4, 8, 3], [1, 1, 1], 28), (2, [5, 6], [2, 1], 32), (3, [4, 4, 2], [1, 2, 2], 33)],
)
def test_collapsed_bank_equals_the_stack(in_channels: int, channels: list[int], pool: list[int], size: int) -> None:
    torch.manual_seed(0)
    stack = SpectralStack(in_channels, size, channels, pool)
    x = torch.rand(4, in_channels, size, size)
    bank = stack.collapse()
    assert bank.shape == (channels[-1], in_channels, stack.out_size, stack.out_size) and bank.is_complex()
    reference = stack.forward_layers(x)
    scale = reference.abs().max()
    assert (apply_filter_bank(x, bank) - reference).abs().max() < 1e-5 * scale
    assert (stack(x) - reference).abs().max() < 1e-5 * scale


def test_front_end_is_linear_and_has_no_nonlinear_module() -> None:
    torch.manual_seed(1)
    student = SCLCStudent(StudentConfig("classification", 1, 28, 10, channels=[6, 6], pool=[2, 1]))
    front = student.front
    assert not any(isinstance(m, (nn.ReLU, nn.GELU, nn.Sigmoid, nn.Tanh, nn.MaxPool2d)) for m in front.modules())
    a, b = torch.rand(2, 1, 28, 28), torch.rand(2, 1, 28, 28)
    lhs = front(2.5 * a - 0.7 * b)
    rhs = 2.5 * front(a) - 0.7 * front(b)
    assert (lhs - rhs).abs().max() < 1e-5 * rhs.abs().max()


def test_spectral_layer_is_convolution() -> None:
    """A filter made from a spatial kernel is that (circular) convolution in the image plane."""
    kernel = torch.zeros(1, 1, 3, 3)
    kernel[0, 0, 1, 2] = 1.0  # a delta one column right of centre: convolution shifts the image right
    x = torch.rand(1, 1, 16, 16)
    out = apply_filter_bank(x, kernel_spectrum(kernel, 16, 16).to(torch.complex64))
    assert torch.allclose(out.real, torch.roll(x, shifts=1, dims=-1), atol=1e-5)


def test_intensity_detection_is_the_default_and_square_law() -> None:
    student = SCLCStudent(StudentConfig("classification", 1, 16, 10, channels=[4], backend_pool=4))
    assert student.detector.mode == "intensity"
    x = torch.rand(3, 1, 16, 16)
    assert torch.allclose(student.detected(x), student.front(x).abs() ** 2, rtol=1e-4, atol=1e-7)
    assert student(x).shape == (3, 10)
    field = Detector("field")(student.front(x))
    assert field.shape == (3, 8, 16, 16) and field.dtype == torch.float32
    with pytest.raises(ValueError, match="detection must be one of"):
        Detector("phase")  # type: ignore[arg-type]


def test_intensity_gradient_is_that_of_the_square_modulus() -> None:
    field = torch.randn(2, 3, 5, 5, dtype=torch.complex64, requires_grad=True)
    weights = torch.rand(2, 3, 5, 5)
    (Detector("intensity")(field) * weights).sum().backward()
    assert torch.allclose(field.grad, 2 * weights * field.detach(), atol=1e-6)  # PyTorch's conjugate-Wirtinger convention
    conjugated = field.detach().conj()  # a lazily conjugated view
    assert torch.allclose(Detector("intensity")(conjugated), field.detach().abs() ** 2, rtol=1e-5)
    exact = torch.randn(2, 3, 4, 4, dtype=torch.complex128, requires_grad=True)
    assert torch.autograd.gradcheck(Detector("intensity"), (exact,))


def test_intensity_gradient_arriving_from_a_channels_last_back_end() -> None:
    field = torch.randn(2, 3, 5, 5, dtype=torch.complex64, requires_grad=True)
    weights = torch.rand(2, 3, 5, 5).contiguous(memory_format=torch.channels_last)
    (Detector("intensity")(field).contiguous(memory_format=torch.channels_last) * weights).sum().backward()
    assert torch.allclose(field.grad, 2 * weights * field.detach(), atol=1e-6)


@pytest.mark.parametrize("conv_channels, conv_layers", [(0, 1), (8, 2)])
@pytest.mark.parametrize("training", [False, True])
def test_classifier_back_end_in_channels_last_computes_the_plain_layout_result(conv_channels: int, conv_layers: int, training: bool) -> None:
    torch.manual_seed(3)
    back = ClassifierBackEnd(4, 10, 7, 16, conv_channels=conv_channels, conv_layers=conv_layers).train(training)
    detected = torch.rand(3, 4, 14, 14, requires_grad=True)
    plain = detected.detach().clone().requires_grad_(True)
    torch.manual_seed(4)  # the same dropout mask for both passes
    reference = back.mlp(back.conv(back.pool(back.norm(plain))))  # the same modules, NCHW throughout
    torch.manual_seed(4)
    ours = back(detected)
    assert torch.allclose(ours, reference, atol=1e-5)
    ours.sum().backward()
    reference.sum().backward()
    assert torch.allclose(detected.grad, plain.grad, atol=1e-5)


@pytest.mark.parametrize("side, size", [(28, 14), (28, 7), (27, 14), (16, 16)])
def test_average_pool_matches_adaptive_pooling(side: int, size: int) -> None:
    x = torch.rand(2, 3, side, side, requires_grad=True)
    y = x.detach().clone().requires_grad_(True)
    ours, reference = AveragePool(size)(x), torch.nn.functional.adaptive_avg_pool2d(y, size)
    assert torch.allclose(ours, reference, atol=1e-6)
    weights = torch.rand_like(reference)
    (ours * weights).sum().backward()
    (reference * weights).sum().backward()
    assert torch.allclose(x.grad, y.grad, atol=1e-6)


def test_all_linear_baseline_is_linear_end_to_end() -> None:
    torch.manual_seed(2)
    model = SCLCStudent(all_linear_config("classification", 1, 16, 10)).eval()
    a, b = torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16)
    bias = model(torch.zeros(1, 1, 16, 16))
    assert torch.allclose(model(a + b) - bias, (model(a) - bias) + (model(b) - bias), atol=1e-4)


@pytest.mark.parametrize("size", [28, 64, 512])
def test_teacher_takes_28_to_512_px(size: int) -> None:
    teacher = TeacherCNN(TeacherConfig("classification", 1, size, 10, depth=3, width=4)).eval()
    assert teacher(torch.rand(1, 1, size, size)).shape == (1, 10)


def test_unet_teacher_keeps_the_image_size() -> None:
    unet = UNetTeacher(UNetConfig("segmentation", 3, 36, 2, levels=2, width=4)).eval()
    assert unet(torch.rand(2, 3, 36, 36)).shape == (2, 2, 36, 36)
