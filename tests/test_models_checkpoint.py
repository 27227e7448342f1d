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
        assert loaded.kind == ("teacher" if name in ("unet", "teacher_two_convs") else name)
        assert loaded.meta["data"] == "digits" and loaded.meta["metrics"] == {"accuracy": 0.5}
        assert not loaded.model.training
        assert torch.allclose(loaded.model(x), model(x))
        assert len(loaded.sha256) == 64 and loaded.path == weights


def test_teacher_saved_before_convs_per_block_existed_loads(tmp_path: Path) -> None:
    model = MODELS["teacher"]().eval()
    save_checkpoint(tmp_path, model)
    doc = json.loads((tmp_path / "model.json").read_text())
    del doc["config"]["convs"]
    (tmp_path / "model.json").write_text(json.dumps(doc))
    loaded = load_checkpoint(tmp_path)
    assert loaded.model.config.convs == 1
    x = torch.rand(2, 1, 16, 16)
    assert torch.allclose(loaded.model(x), model(x))


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
