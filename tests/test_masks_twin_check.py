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
from labctl.masks.twin_check import twin_check
from labctl.optics.errors import OpticsModelError
from labctl.optics.layout import images_of
from labctl.training.loop import TrainSettings
from labctl.training.train import train_student
from tests.conftest import bench_toml

SIZE = 16


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("twin_check")
    (root / "bench.toml").write_text(bench_toml(ideal=True, noise=False))
    data = load_dataset("digits", size=SIZE)
    student = train_student(data, None, TrainSettings(epochs=3, batch_size=64, lr=1e-2, train_limit=600), kind="sclc",
                            out_dir=root / "sclc", channels=(4,))
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
    assert check.images == 100 and check.digital == pytest.approx(digital)
    assert check.digital > 0.5 and check.loss < 0.15  # the iterative export on an ideal panel reads near digital
    scrambled = np.random.default_rng(0).uniform(0, 2 * np.pi, size=masks.phase_rad.shape)
    noise = twin_check(model, masks.layout, list(scrambled.reshape(-1, *scrambled.shape[-2:])), images, targets)
    assert noise.digital == check.digital and noise.optical < check.optical - 0.2  # a mask that shapes nothing fails
    assert check.to_dict() == {"images": 100, "digital": check.digital, "optical": check.optical}


def test_the_check_refuses_what_it_cannot_score(exported) -> None:
    model, masks, images, targets = (exported[k] for k in ("model", "masks", "images", "targets"))
    with pytest.raises(OpticsModelError, match="2 phase masks for a layout of 1 channel group"):
        twin_check(model, masks.layout, _phases(masks) * 2, images, targets)
    with pytest.raises(OpticsModelError, match="at least 2 images"):
        twin_check(model, masks.layout, _phases(masks), images[:1], targets[:1])
    with pytest.raises(OpticsModelError, match="one target each"):
        twin_check(model, masks.layout, _phases(masks), images, targets[:5])
