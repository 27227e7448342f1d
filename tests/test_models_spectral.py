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


# -- kernel support: the SCLC filters limited to K x K px, convolved linearly as a 4f system does --------------


def _spatial(bank: torch.Tensor) -> torch.Tensor:
    return torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(bank, dim=(-2, -1))), dim=(-2, -1))


@pytest.mark.parametrize("support, layers", [(5, 1), (9, 1), (5, 2)])
def test_kernel_support_zeroes_every_kernel_outside_its_support(support: int, layers: int) -> None:
    from labctl.models.spectral import project_kernel_support

    torch.manual_seed(0)
    stack = SpectralStack(1, 28, [3] * layers, [1] * layers, kernel_support=support)
    with torch.no_grad():  # whatever the optimiser makes of the stored values, only a K x K kernel is applied
        for layer in stack.layers:
            layer.weight_real.normal_()
            layer.weight_imag.normal_()
    extent = layers * (support - 1) + 1
    assert stack.kernel_extent == extent
    for filters, side in [*((layer.filters, support) for layer in stack.layers), (stack.collapse(), extent)]:
        kernels = _spatial(filters.detach())
        inside = torch.zeros(28, 28, dtype=torch.bool)
        inside[14 - side // 2 : 14 + side // 2 + 1, 14 - side // 2 : 14 + side // 2 + 1] = True
        assert kernels[..., ~inside].abs().max() < 1e-6 * kernels.abs().max()
        assert kernels[..., inside].abs().max() > 0.1 * kernels.abs().max()
    w = torch.complex(stack.layers[0].weight_real, stack.layers[0].weight_imag).detach()
    once = project_kernel_support(w, support)
    assert (project_kernel_support(once, support) - once).abs().max() < 1e-5 * once.abs().max()  # a projection
    assert (once - w).abs().max() > 0.1 * w.abs().max()  # and it did remove something


def test_kernel_support_makes_the_stack_the_linear_convolution() -> None:
    """Zero-padded: the image's border does not wrap (as in a 4f system), unlike the free filters' circular one."""
    torch.manual_seed(1)
    stack = SpectralStack(1, 16, [2], [1], kernel_support=3)
    kernel = torch.zeros(2, 1, 3, 3)
    kernel[0, 0, 1, 2] = 1.0  # shift right by one pixel
    kernel[1, 0, 0, 1] = 2.0  # offset one row up: the image moves up one pixel, doubled
    bank = kernel_spectrum(kernel, 16, 16).to(torch.complex64)
    with torch.no_grad():
        stack.layers[0].weight_real.copy_(bank.real)
        stack.layers[0].weight_imag.copy_(bank.imag)
    x = torch.rand(3, 1, 16, 16)
    out = stack(x).real
    right = torch.zeros_like(x[:, 0])
    right[..., 1:] = x[:, 0, :, :-1]  # the last column leaves the frame; nothing re-enters at the left
    up = torch.zeros_like(x[:, 0])
    up[..., :-1, :] = 2 * x[:, 0, 1:, :]  # the first row leaves the frame; the last stays dark
    assert torch.allclose(out[:, 0], right, atol=1e-5) and torch.allclose(out[:, 1], up, atol=1e-5)
    assert torch.allclose(apply_filter_bank(x, bank, support=3).real, out, atol=1e-5)
    assert not torch.allclose(apply_filter_bank(x, bank).real[:, 0], right, atol=1e-3)  # the circular one wraps


@pytest.mark.parametrize("kwargs, message", [
    ({"kernel_support": 4}, "must be odd"),
    ({"kernel_support": 29}, "must fit the 28-px image"),
    ({"kernel_support": 11, "layers": 3}, "spans 31 px"),
    ({"kernel_support": 5, "pool": 2}, "without spectral pooling"),
])
def test_kernel_support_that_cannot_work_is_refused(kwargs: dict, message: str) -> None:
    from labctl.models.errors import ModelConfigError

    layers, pool = kwargs.pop("layers", 1), kwargs.pop("pool", 1)
    with pytest.raises(ModelConfigError, match=message):
        SpectralStack(1, 28, [4] * layers, [pool] + [1] * (layers - 1), **kwargs)


def test_student_config_carries_the_kernel_support() -> None:
    student = SCLCStudent(StudentConfig("classification", 1, 28, 10, channels=[4], backend_pool=7, kernel_support=7))
    assert student.front.kernel_support == 7 and student.front.kernel_extent == 7
    assert SCLCStudent(StudentConfig("classification", 1, 28, 10, channels=[4])).front.kernel_extent == 28
