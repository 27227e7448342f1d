"""The export's twin check: training images through the calibrated twin, the back end's accuracy on
those readouts against the digital model's on the same images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from drivers.bench import BenchSpec
from labctl.data import load_dataset
from labctl.masks.export import export_masks
from labctl.masks.twin_check import _counts, twin_check
from labctl.optics.errors import OpticsModelError
from labctl.optics.layout import images_of
from labctl.training.loop import TrainSettings
from labctl.training.train import train_student
from tests.conftest import bench_toml

SIZE = 16


@pytest.fixture(scope="module", params=[4, 20], ids=["one mask", "two masks"])  # the test bench holds 16 tiles a frame
def exported(tmp_path_factory, request) -> dict:
    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("twin_check")
    (root / "bench.toml").write_text(bench_toml(ideal=True, noise=False))
    data = load_dataset("digits", size=SIZE)
    student = train_student(data, None, TrainSettings(epochs=3, batch_size=64, lr=1e-2, train_limit=600), kind="sclc",
                            out_dir=root / "sclc", channels=(request.param,))
    masks = export_masks(student.path, BenchSpec.from_file(root / "bench.toml"), root / "m.h5", encoding="iterative")
    images, targets = images_of(data.train, 800)
    return {"model": student.model, "masks": masks, "images": images[600:], "targets": targets[600:]}


def _phases(masks) -> list[np.ndarray]:  # noqa: ANN001
    return list(masks.phase_rad.reshape(-1, *masks.phase_rad.shape[-2:]))


def test_the_check_scores_the_back_end_on_twin_readouts_against_the_digital_model(exported) -> None:
    model, masks, images, targets = (exported[k] for k in ("model", "masks", "images", "targets"))
    check = twin_check(model, masks.layout, _phases(masks), images, targets)
    with torch.no_grad():
        digital = (model(torch.from_numpy(images[100:])).argmax(1).numpy() == targets[100:]).mean()
    assert masks.layout.channel_groups == -(-masks.layout.channels // 16)
    assert check.images == 100 and check.digital == pytest.approx(digital)
    assert check.digital > 0.5 and check.loss < 0.15  # the iterative export on an ideal panel reads near digital
    scrambled = np.random.default_rng(0).uniform(0, 2 * np.pi, size=masks.phase_rad.shape)
    noise = twin_check(model, masks.layout, list(scrambled.reshape(-1, *scrambled.shape[-2:])), images, targets)
    assert noise.digital == check.digital and noise.optical < check.optical - 0.2  # a mask that shapes nothing fails
    assert check.to_dict() == {"images": 100, "digital": check.digital, "optical": check.optical, "metric": "accuracy"}
    model.train()  # a model in training mode is read as in evaluation and left as it was, statistics untouched
    state = {name: value.clone() for name, value in model.state_dict().items()}
    try:
        assert twin_check(model, masks.layout, _phases(masks), images, targets) == check and model.training
        assert all(torch.equal(value, model.state_dict()[name]) for name, value in state.items())
    finally:
        model.eval()


def test_the_check_refuses_what_it_cannot_score(exported) -> None:
    model, masks, images, targets = (exported[k] for k in ("model", "masks", "images", "targets"))
    groups = masks.layout.channel_groups
    with pytest.raises(OpticsModelError, match=f"{2 * groups} phase masks for a layout of {groups} channel group"):
        twin_check(model, masks.layout, _phases(masks) * 2, images, targets)
    with pytest.raises(OpticsModelError, match="at least 2 images"):
        twin_check(model, masks.layout, _phases(masks), images[:1], targets[:1])
    with pytest.raises(OpticsModelError, match="one target each"):
        twin_check(model, masks.layout, _phases(masks), images, targets[:5])


def test_segmentation_is_scored_by_foreground_iou() -> None:
    truth = torch.tensor([[[0, 1], [1, 1]]])  # 3 foreground pixels
    logits = torch.zeros(1, 2, 2, 2)
    logits[0, 1, 0, :] = 1.0  # predicts foreground on the top row: 1 right, 1 wrong, 2 missed
    assert _counts(logits, truth, "segmentation").tolist() == [1, 4]
    assert _counts(torch.tensor([[0.0, 2.0], [3.0, 1.0]]), torch.tensor([1, 1]), "classification").tolist() == [1, 2]
