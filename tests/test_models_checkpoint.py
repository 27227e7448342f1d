"""Checkpoints: plain state dicts + JSON; a checkpoint of another architecture is refused clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from labctl.models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from labctl.models.student import SCLCStudent, StudentConfig, all_linear_config
from labctl.models.teacher import TeacherCNN, TeacherConfig, UNetConfig, UNetTeacher

MODELS = {
    "teacher": lambda: TeacherCNN(TeacherConfig("classification", 1, 16, 10, depth=2, width=4, hidden=8)),
    "teacher_two_convs": lambda: TeacherCNN(TeacherConfig("classification", 1, 16, 10, depth=2, width=4, hidden=8, convs=2)),
    "unet": lambda: UNetTeacher(UNetConfig("segmentation", 1, 16, 2, levels=1, width=4)),
    "sclc": lambda: SCLCStudent(StudentConfig("classification", 1, 16, 10, channels=[3, 4], backend_pool=4, hidden=8)),
    "sclc_backend_conv": lambda: SCLCStudent(StudentConfig("classification", 1, 16, 10, channels=[3], backend_pool=5, hidden=8, backend_conv=6)),
    "sclc_two_backend_convs": lambda: SCLCStudent(
        StudentConfig("classification", 1, 16, 10, channels=[3], backend_pool=5, hidden=8, backend_conv=6, backend_conv_layers=2)
    ),
    "linear": lambda: SCLCStudent(all_linear_config("classification", 1, 16, 10)),
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("name", list(MODELS))
def test_round_trip_from_file_json_or_folder(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    weights = save_checkpoint(tmp_path / "run", model, {"data": "digits", "metrics": {"accuracy": 0.5}})
    assert isinstance(torch.load(weights, weights_only=True), dict)
    x = torch.rand(2, 1, 16, 16)
    for path in (weights, tmp_path / "run", tmp_path / "run" / "model.json"):
        loaded = load_checkpoint(path)
        assert loaded.kind == {"unet": "teacher", "teacher_two_convs": "teacher", "sclc_backend_conv": "sclc", "sclc_two_backend_convs": "sclc"}.get(name, name)
        assert loaded.meta["data"] == "digits" and loaded.meta["metrics"] == {"accuracy": 0.5}
        assert not loaded.model.training
        assert torch.allclose(loaded.model(x), model(x))
        assert len(loaded.sha256) == 64 and loaded.path == weights


@pytest.mark.parametrize(
    ("name", "field", "default"), [("teacher", "convs", 1), ("sclc", "backend_conv", 0), ("sclc_backend_conv", "backend_conv_layers", 1)],
)
def test_checkpoint_saved_before_a_config_field_existed_loads(name: str, field: str, default: int, tmp_path: Path) -> None:
    model = MODELS[name]().eval()
    save_checkpoint(tmp_path, model)
    doc = json.loads((tmp_path / "model.json").read_text())
    del doc["config"][field]
    (tmp_path / "model.json").write_text(json.dumps(doc))
    loaded = load_checkpoint(tmp_path)
    assert getattr(loaded.model.config, field) == default
    x = torch.rand(2, 1, 16, 16)
    assert torch.allclose(loaded.model(x), model(x))


def test_backend_convolution_shapes_and_limits() -> None:
    model = MODELS["sclc_backend_conv"]().eval()
    assert model.back.conv[0].weight.shape == (6, 3, 3, 3)  # 3 detected channels -> 6, 3x3
    # pooled to 5x5, max-pooled to 3x3 (ceil): the MLP reads 6 * 3 * 3 features
    assert model.back.mlp[1].in_features == 6 * 3 * 3
    assert model(torch.rand(2, 1, 16, 16)).shape == (2, 10)
    with pytest.raises(ValueError, match="linear back end has no convolution"):
        SCLCStudent(StudentConfig("classification", 1, 16, 10, linear_backend=True, backend_conv=4))
    with pytest.raises(ValueError, match="back-end convolution channels must be >= 0 .0: none. and its layers >= 1; got -1 channels"):
        SCLCStudent(StudentConfig("classification", 1, 16, 10, backend_conv=-1))
    with pytest.raises(ValueError, match="back-end convolution is for classification back ends; this student is for segmentation"):
        StudentConfig("segmentation", 1, 16, 2, backend_conv=4)


def test_two_backend_convolutions_shapes_and_limits() -> None:
    model = MODELS["sclc_two_backend_convs"]().eval()
    convs = [m for m in model.back.conv if isinstance(m, torch.nn.Conv2d)]
    assert [c.weight.shape for c in convs] == [(6, 3, 3, 3), (6, 6, 3, 3)]
    # pooled to 5x5, max-pooled to 3x3, then to 2x2 (ceil): the MLP reads 6 * 2 * 2 features
    assert model.back.mlp[1].in_features == 6 * 2 * 2
    assert model(torch.rand(2, 1, 16, 16)).shape == (2, 10)
    with pytest.raises(ValueError, match="layers >= 1; got 4 channels, 0 layers"):
        SCLCStudent(StudentConfig("classification", 1, 16, 10, backend_conv=4, backend_conv_layers=0))
    with pytest.raises(ValueError, match="2 back-end convolution layers need back-end convolution channels"):
        StudentConfig("classification", 1, 16, 10, backend_conv_layers=2)


def test_teacher_convs_per_block_must_be_positive() -> None:
    with pytest.raises(ValueError, match="convolutions per block must be >= 1; got 2, 4, 0"):
        TeacherConfig("classification", 1, 16, 10, depth=2, width=4, convs=0)


def test_weights_of_another_architecture_are_refused(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "student", MODELS["sclc"]())
    save_checkpoint(tmp_path / "teacher", MODELS["teacher"]())
    (tmp_path / "student" / "model.pt").write_bytes((tmp_path / "teacher" / "model.pt").read_bytes())
    with pytest.raises(CheckpointError, match=r"student/model.pt: weights do not fit the sclc architecture"):
        load_checkpoint(tmp_path / "student")


def test_same_names_other_shapes_are_refused(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, MODELS["sclc"]())
    doc = json.loads((tmp_path / "model.json").read_text())
    doc["config"]["hidden"] = 9
    (tmp_path / "model.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="model.pt: weights do not fit the sclc architecture"):
        load_checkpoint(tmp_path)


def test_missing_or_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="model.json: no such checkpoint description"):
        load_checkpoint(tmp_path)
    torch.save({"w": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="other.json: no such checkpoint description"):
        load_checkpoint(tmp_path / "other.pt")
    save_checkpoint(tmp_path / "run", MODELS["teacher"]())
    (tmp_path / "run" / "model.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="cannot read the weights"):
        load_checkpoint(tmp_path / "run")
    (tmp_path / "run" / "model.json").write_text(json.dumps({"kind": "teacher"}))
    with pytest.raises(CheckpointError, match="not a labctl checkpoint description"):
        load_checkpoint(tmp_path / "run")
