"""--device: resolution of auto/cpu/cuda[:N], refusal of a GPU that is not there (also at the CLI and
in a simulated bench file), and CPU-vs-CUDA agreement where a GPU exists."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from drivers.bench import BenchSpec
from drivers.errors import BenchFileError
from labctl.bench_device import simulated_on
from labctl.cli import main
from labctl.device import DeviceUnavailable, resolve_device
from tests.conftest import bench_toml


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def one_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


def test_auto_is_the_cpu_without_a_gpu_and_the_gpu_with_one(no_gpu: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")


def test_cpu_in_any_case_and_spacing() -> None:
    assert resolve_device("cpu") == resolve_device(" CPU ") == torch.device("cpu")


@pytest.mark.parametrize("text", ["cuda", "cuda:0", "cuda:7"])
def test_a_gpu_is_refused_where_there_is_none(no_gpu: None, text: str) -> None:
    with pytest.raises(DeviceUnavailable, match="asked for a GPU"):
        resolve_device(text)


def test_a_gpu_index_beyond_the_machine_is_refused(one_gpu: None) -> None:
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    assert resolve_device("cuda") == torch.device("cuda")
    with pytest.raises(DeviceUnavailable, match="1 CUDA GPU"):
        resolve_device("cuda:7")


@pytest.mark.parametrize("text", ["gpu", "cpu:0", "cuda:x", "auto:1", ""])
def test_malformed_devices_are_refused(text: str) -> None:
    with pytest.raises(DeviceUnavailable, match="is not one of auto|cpu|cuda"):
        resolve_device(text)


@pytest.mark.parametrize(
    "args",
    [
        ["train", "teacher", "--device", "cuda", "--out", "OUT"],
        ["train", "student", "--no-kd", "--device", "cuda:7", "--out", "OUT"],
        ["efficiency", "--device", "cuda", "--out", "OUT"],
        ["demo", "--device", "cuda", "--out", "OUT"],
        ["evaluate", "EXISTING", "--device", "cuda"],
        ["finetune", "--masks", "EXISTING/masks.h5", "--device", "cuda", "--out", "OUT"],
    ],
)
def test_every_command_refuses_cuda_in_one_line_before_any_work(no_gpu: None, tmp_path, args: list[str]) -> None:
    (tmp_path / "masks.h5").write_bytes(b"")
    out = tmp_path / "out"
    args = [a.replace("EXISTING", str(tmp_path)).replace("OUT", str(out)) for a in args]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    error = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and "'--device'" in error[0] and "asked for a GPU" in error[0]
    assert "Traceback" not in result.output and not out.exists()


def test_a_simulated_camera_on_a_missing_gpu_is_a_bench_file_error(no_gpu: None) -> None:
    spec = BenchSpec.from_toml(bench_toml(extra_camera='device = "cuda"'))
    with pytest.raises(BenchFileError, match=r"\[camera\].*asked for a GPU"):
        spec.open()


def test_simulated_on_sets_the_mock_camera_device_and_leaves_the_bench_file() -> None:
    spec = BenchSpec.from_toml(bench_toml())
    moved = simulated_on(spec, torch.device("cpu"))
    assert moved.devices["camera"].args["device"] == "cpu" and "device" not in spec.devices["camera"].args
    assert moved.raw == spec.raw and moved.devices["fourier_slm"] == spec.devices["fourier_slm"]


def _frames(device: torch.device) -> np.ndarray:
    spec = simulated_on(BenchSpec.from_toml(bench_toml(noise=False)), device)
    rng = np.random.default_rng(0)
    with spec.open() as bench:
        bench.fourier_slm.write_phase(rng.uniform(0, 2 * np.pi, bench.fourier_slm.grid.shape))
        bench.camera.trigger_source = "hardware"
        bench.input_slm.write_amplitude(rng.random((4, *bench.input_slm.grid.shape)))
        return bench.camera.read_frames(4).data


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cpu_and_cuda_agree_to_float_tolerance() -> None:
    """Noise-free simulated frames (within 1 DN of quantisation), and the models' logits."""
    from labctl.data import load_dataset
    from labctl.models.bench_layout import layout_for_bench
    from labctl.training.train import student_for, teacher_for

    cpu, gpu = _frames(torch.device("cpu")), _frames(torch.device("cuda"))
    assert np.abs(cpu.astype(int) - gpu.astype(int)).max() <= 1
    data = load_dataset("digits", None)
    x = data.test.images[:32].float() / 255
    layout = layout_for_bench(BenchSpec.default(), data.size, 16)
    models = [teacher_for(data, width=16), student_for(data, "sclc", channels=(8,), hidden=64),
              student_for(data, "optics_aware", channels=(16,), layout=layout)]
    for model in models:
        model.eval()
        with torch.no_grad():
            on_cpu = model(x)
            on_gpu = model.to("cuda")(x.to("cuda")).cpu()
        torch.testing.assert_close(on_gpu, on_cpu, rtol=1e-3, atol=1e-3)
