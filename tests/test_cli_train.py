"""`labctl train teacher|student` and `labctl evaluate`, end to end on tiny budgets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from labctl.cli import main

TINY = ["--size", "16", "--epochs", "1", "--train-limit", "128", "--batch-size", "64"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def _last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "teacher"
    code, output = _invoke("train", "teacher", *TINY, "--width", "4", "--depth", "2", "--convs", "2", "--out", str(out))
    assert code == 0, output
    return out


def test_teacher_run_folder_has_checkpoint_curves_and_json(teacher_dir: Path) -> None:
    assert {"model.pt", "model.json", "curves.png"} <= {p.name for p in teacher_dir.iterdir()}
    doc = json.loads((teacher_dir / "model.json").read_text())
    assert doc["kind"] == "teacher" and doc["data"] == "digits" and doc["image_size"] == 16
    assert (doc["config"]["depth"], doc["config"]["width"], doc["config"]["convs"]) == (2, 4, 2)
    assert isinstance(torch.load(teacher_dir / "model.pt", weights_only=True), dict)
    code, output = _invoke("evaluate", str(teacher_dir))
    assert code == 0, output
    assert _last_json(output)["accuracy"] == pytest.approx(doc["metrics"]["accuracy"])


@pytest.mark.parametrize(
    "extra", [[], ["--no-kd"], ["--all-linear", "--no-kd"], ["--channels", "4,4", "--pool", "1,2", "--backend-pool", "4"], ["--backend-conv", "3", "--backend-conv-layers", "1"]],
)
def test_students_by_the_same_command(teacher_dir: Path, tmp_path: Path, extra: list[str]) -> None:
    out = tmp_path / "student"
    code, output = _invoke(
        "train", "student", *TINY, "--teacher", str(teacher_dir), "--kd-temperature", "4", "--kd-alpha", "0.9",
        "--hidden", "16", "--spectral-lr-scale", "4", *extra, "--out", str(out),
    )
    assert code == 0, output
    doc = json.loads((out / "model.json").read_text())
    assert doc["kd"] == ("--no-kd" not in extra)
    assert doc["training"]["spectral_lr_scale"] == 4.0
    assert doc["kind"] == ("linear" if "--all-linear" in extra else "sclc")
    if "--backend-pool" in extra:
        assert (doc["config"]["channels"], doc["config"]["pool"], doc["config"]["backend_pool"]) == ([4, 4], [1, 2], 4)
    assert doc["config"]["backend_conv"] == (3 if "--backend-conv" in extra else 0 if "--all-linear" in extra else 64)
    assert doc["config"]["backend_conv_layers"] == (1 if "--all-linear" in extra or "--backend-conv-layers" in extra else 2)
    code, output = _invoke("evaluate", str(out / "model.pt"), "--data", "digits")
    assert code == 0, output
    assert 0.0 <= _last_json(output)["accuracy"] <= 1.0


def test_classification_sclc_student_defaults_to_the_benchmarked_size(tmp_path: Path) -> None:
    out = tmp_path / "student"
    code, output = _invoke("train", "student", *TINY, "--no-kd", "--out", str(out))
    assert code == 0, output
    config = json.loads((out / "model.json").read_text())["config"]
    assert (config["channels"], config["hidden"], config["backend_pool"], config["backend_conv"], config["backend_conv_layers"]) == ([32], 256, 14, 64, 2)


def test_optics_aware_student_trains(tmp_path: Path) -> None:
    out = tmp_path / "optical"
    code, output = _invoke(
        "train", "student", "--size", "12", "--epochs", "1", "--train-limit", "32", "--batch-size", "32",
        "--optics-aware", "--channels", "2", "--hidden", "8", "--backend-conv", "3", "--no-kd", "--out", str(out),
    )
    assert code == 0, output
    doc = json.loads((out / "model.json").read_text())
    assert doc["kind"] == "optics_aware" and (doc["config"]["hidden"], doc["config"]["backend_pool"], doc["config"]["backend_conv"]) == (8, 7, 3)


def test_optics_aware_student_starts_from_an_sclc_student(tmp_path: Path) -> None:
    sclc = tmp_path / "sclc"
    small = ["--size", "12", "--epochs", "1", "--train-limit", "32", "--batch-size", "32", "--no-kd"]
    code, output = _invoke("train", "student", *small, "--channels", "3", "--hidden", "8", "--backend-pool", "4",
                           "--backend-conv", "2", "--backend-conv-layers", "1", "--out", str(sclc))
    assert code == 0, output
    out = tmp_path / "optical"
    code, output = _invoke("train", "student", *small, "--optics-aware", "--start-from", str(sclc), "--phase-lr-scale", "10",
                           "--out", str(out))
    assert code == 0, output
    doc = json.loads((out / "model.json").read_text())
    assert doc["kind"] == "optics_aware" and doc["started_from"] == str(sclc) and doc["training"]["phase_lr_scale"] == 10
    assert (doc["config"]["layout"]["channels"], doc["config"]["hidden"], doc["config"]["backend_pool"], doc["config"]["backend_conv"]) == (3, 8, 4, 2)
    code, output = _invoke("train", "student", *small, "--optics-aware", "--start-from", str(sclc), "--hidden", "9", "--out", str(tmp_path / "x"))
    assert code != 0 and "the channels and back end are the SCLC student's; drop --hidden" in output
    code, output = _invoke("train", "student", *small, "--start-from", str(sclc), "--out", str(tmp_path / "y"))
    assert code != 0 and "add --optics-aware" in output
    code, output = _invoke("train", "student", *small, "--optics-aware", "--start-from", str(out), "--out", str(tmp_path / "z"))
    assert code != 0 and "is a 'optics_aware' checkpoint; --start-from needs an SCLC student" in output

    distilled = tmp_path / "distilled"
    with_kd = [arg for arg in small if arg != "--no-kd"]
    unsized = with_kd[2:]  # no --size: the image size is the start student's, as it is a teacher's with --teacher
    code, output = _invoke("train", "student", *unsized, "--optics-aware", "--start-from", str(sclc), "--distil-from-start",
                           "--out", str(distilled))
    assert code == 0, output
    doc = json.loads((distilled / "model.json").read_text())
    assert doc["kd"] is True and doc["teacher"] == str(sclc) == doc["started_from"]
    for refused in (["--distil-from-start"], [*small[-1:], "--start-from", str(sclc), "--distil-from-start"],
                    ["--teacher", str(sclc), "--start-from", str(sclc), "--distil-from-start"]):
        code, output = _invoke("train", "student", *with_kd, "--optics-aware", *refused, "--out", str(tmp_path / "r"))
        assert code != 0 and "--distil-from-start distils from the --start-from student" in output


def test_segmentation_reports_iou_and_dice(tmp_path: Path) -> None:
    out = tmp_path / "unet"
    code, output = _invoke("train", "teacher", "--data", "shapes", *TINY, "--width", "4", "--out", str(out))
    assert code == 0, output
    code, output = _invoke("evaluate", str(out))
    assert code == 0, output
    assert set(_last_json(output)) == {"iou", "dice"}


def test_clear_errors(teacher_dir: Path, tmp_path: Path) -> None:
    code, output = _invoke("train", "student", *TINY, "--out", str(tmp_path / "s"))
    assert code != 0 and "KD needs a teacher" in output
    student = tmp_path / "s2"
    assert _invoke("train", "student", *TINY, "--no-kd", "--hidden", "8", "--out", str(student))[0] == 0
    code, output = _invoke("train", "student", *TINY, "--teacher", str(student), "--out", str(tmp_path / "s3"))
    assert code != 0 and "is a 'sclc' checkpoint; --teacher needs one" in output
    code, output = _invoke("evaluate", str(teacher_dir), "--data", "shapes")
    assert code != 0 and "shapes is a segmentation data set" in output
    code, output = _invoke("evaluate", str(teacher_dir), "--data", "fashion")
    assert code != 0 and "unknown data spec 'fashion'" in output
    code, output = _invoke("train", "student", *TINY, "--no-kd", "--all-linear", "--backend-conv", "4", "--out", str(tmp_path / "s4"))
    assert code != 0 and "the --all-linear baseline has none" in output
    code, output = _invoke("train", "student", *TINY, "--data", "shapes", "--no-kd", "--backend-conv", "4", "--out", str(tmp_path / "s5"))
    assert code != 0 and "--backend-conv and --backend-conv-layers are for classification back ends; shapes is a segmentation set" in output
    code, output = _invoke("train", "student", *TINY, "--data", "shapes", "--no-kd", "--backend-conv-layers", "2", "--out", str(tmp_path / "s5b"))
    assert code != 0 and "--backend-conv and --backend-conv-layers are for classification back ends; shapes is a segmentation set" in output
    code, output = _invoke("train", "student", *TINY, "--no-kd", "--backend-conv", "0", "--backend-conv-layers", "2", "--out", str(tmp_path / "s6"))
    assert code != 0 and "--backend-conv-layers needs a back-end convolution" in output
    code, output = _invoke("train", "student", *TINY, "--no-kd", "--all-linear", "--backend-conv-layers", "2", "--out", str(tmp_path / "s7"))
    assert code != 0 and "--backend-conv-layers adds ReLUs" in output
    (tmp_path / "bad").mkdir()
    code, output = _invoke("evaluate", str(tmp_path / "bad"))
    assert code != 0 and "no such checkpoint description" in output


def test_cli_kd_defaults_are_the_training_defaults() -> None:
    from labctl.cli.train import DEFAULT_ALPHA, DEFAULT_PHASE_LR_SCALE, DEFAULT_SPECTRAL_LR_SCALE, DEFAULT_T
    from labctl.training.loop import TrainSettings

    defaults = TrainSettings()
    assert (DEFAULT_T, DEFAULT_ALPHA, DEFAULT_SPECTRAL_LR_SCALE, DEFAULT_PHASE_LR_SCALE) == (
        defaults.kd_temperature, defaults.kd_alpha, defaults.spectral_lr_scale, defaults.phase_lr_scale)


def test_a_classification_sclc_student_is_kernel_limited_by_default_and_0_frees_it(tmp_path: Path) -> None:
    from labctl.models.student import default_kernel_support

    small = ["--channels", "4", "--hidden", "8", "--backend-conv", "0"]
    for extra, expected in (([], 5), (["--kernel-support", "0"], 0), (["--channels", "4,4"], 0), (["--pool", "2"], 0)):
        out = tmp_path / f"s{len(list(tmp_path.iterdir()))}"
        code, output = _invoke("train", "student", *TINY, "--no-kd", *small, *extra, "--out", str(out))
        assert code == 0, output
        assert json.loads((out / "model.json").read_text())["config"]["kernel_support"] == expected, extra
    assert [default_kernel_support("classification", n) for n in (8, 16, 28, 32, 64)] == [3, 5, 9, 11, 21]
    assert default_kernel_support("segmentation", 28) == 0 and default_kernel_support("classification", 4) == 0


def test_kernel_support_option_limits_the_sclc_students_kernels(tmp_path: Path) -> None:
    out = tmp_path / "k5"
    code, output = _invoke("train", "student", *TINY, "--no-kd", "--channels", "4", "--hidden", "8", "--backend-conv", "0",
                           "--kernel-support", "5", "--out", str(out))
    assert code == 0, output
    assert json.loads((out / "model.json").read_text())["config"]["kernel_support"] == 5
    from labctl.models.checkpoint import load_checkpoint

    front = load_checkpoint(out).model.front
    assert front.kernel_extent == 5
    kernels = torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(front.collapse().detach(), dim=(-2, -1))), dim=(-2, -1))
    outside = kernels.clone()
    outside[..., 6:11, 6:11] = 0  # the central 5 x 5 of a 16-px frame (offset 0 at index 8)
    assert outside.abs().max() < 1e-6 * kernels.abs().max()
    code, output = _invoke("train", "student", *TINY, "--no-kd", "--kernel-support", "4", "--out", str(tmp_path / "even"))
    assert code != 0 and "must be odd" in output, output
    code, output = _invoke("train", "student", *TINY, "--no-kd", "--all-linear", "--kernel-support", "5", "--out", str(tmp_path / "lin"))
    assert code != 0 and "--kernel-support" in output, output
