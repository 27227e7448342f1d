"""``labctl demo``: the whole method on tiny settings (a smoke test: every stage runs, the summary, the
FLOPs and the figure are written), its default data and the figure's pieces."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from drivers.bench import BenchSpec
from labctl.cli.demo import demo_command
from labctl.data import load_dataset
from labctl.demo import FIGURE_NAME, DemoSettings, electronic_mflops, run_demo
from labctl.demo_figure import class_names, tile_mosaic
from labctl.models.efficiency import backend_flops
from labctl.training.train import student_for, teacher_for
from tests.conftest import bench_toml


def test_demo_defaults_to_the_embedded_fashion_subset() -> None:
    data_option = next(p for p in demo_command.params if p.name == "data_spec")
    assert data_option.default == "fashion-mini"
    assert DemoSettings().figure_inputs > 0


@pytest.mark.filterwarnings("ignore:bench .* has no .*calibration")  # the uncalibrated run warns by design
@pytest.mark.parametrize("threads", [1, 2])  # 2: the two bench runs side by side, one thread each
def test_demo_runs_end_to_end_on_tiny_settings(tmp_path: Path, one_torch_thread: None, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    bench_file = tmp_path / "small.toml"
    bench_file.write_text(bench_toml())
    data = load_dataset("digits")
    arch = {"channels": (4,), "hidden": 16, "backend_pool": 4, "backend_conv": 4, "backend_conv_layers": 1}
    settings = DemoSettings(teacher_epochs=1, student_epochs=1, optics_epochs=1, student_arch=arch, train_limit=200, test_limit=12,
                            figure_inputs=2)
    out = tmp_path / "demo"
    summary = run_demo(BenchSpec.from_file(bench_file), data, out, settings, log=lambda line: None)

    for key in ("teacher", "student_nokd", "student_kd", "optics_aware_digital", "optical_uncalibrated", "optical_calibrated"):
        assert 0.0 <= summary[key] <= 1.0, key
    assert torch.get_num_threads() == threads  # the runs' one thread each is not left behind
    from labctl.records.run_record import RunRecord

    for name in ("uncalibrated", "calibrated"):  # every test input through each bench: no run stopped the other
        assert summary["timings_s"][f"run_{name}"] > 0
        with RunRecord.open(out / f"run_{name}.h5") as record:
            assert record.n_inputs == 12 and bool(record.done.all()), name
    assert json.loads((out / "summary.json").read_text())["teacher"] == summary["teacher"]
    mflops = summary["mflops"]
    assert all(v > 0 for v in mflops.values())
    assert mflops["teacher"] > mflops["student_kd"] == mflops["student_nokd"]  # same student, all-electronic teacher
    # the optics-aware student started from the SCLC + KD student: the same back end, the same FLOPs
    assert mflops["optics_aware"] == mflops["student_kd"]
    optics_doc = json.loads((out / "optics_aware" / "model.json").read_text())
    # started from the SCLC + KD student and distilled from it
    assert optics_doc["started_from"] == optics_doc["teacher"] == str(out / "student_kd" / "model.pt")
    assert summary["frames_per_input"] == 1 and summary["cpu_seconds"] > 0 and set(summary["cpu_s"]) >= {"teacher", "figure"}

    png = Path(summary["figure"])
    assert png == out / FIGURE_NAME and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(png)
    assert image.shape[0] > 300 and image.shape[1] > 800  # 2 rows of 4 panels
    assert image[..., :3].std() > 0.05  # something drawn, not a blank page
    assert (out / "demo.h5").is_file()  # the figure's own run record, frames kept

    with pytest.raises(FileExistsError, match="already holds a demo"):
        run_demo(BenchSpec.from_file(bench_file), data, out, settings, log=lambda line: None)


def test_electronic_flops_are_the_back_end_of_a_student_and_all_of_the_teacher() -> None:
    data = load_dataset("digits")
    student = student_for(data, "sclc", channels=(8,), hidden=64, backend_pool=7, backend_conv=16, backend_conv_layers=2)
    assert electronic_mflops(student) == pytest.approx(backend_flops(8, 28, 7, 64, 10, 16, 2) / 1e6)
    small, large = teacher_for(data, width=8), teacher_for(data, width=32)
    assert 0 < electronic_mflops(small) < electronic_mflops(large)


def test_tile_mosaic_places_every_channel() -> None:
    channels = np.arange(5 * 3 * 3, dtype=np.float32).reshape(5, 3, 3)
    mosaic = tile_mosaic(channels)
    assert mosaic.shape == (3 * 2 + 1, 3 * 3 + 2)  # 5 channels on a 2 x 3 grid, 1-px gaps
    assert np.array_equal(mosaic[:3, :3], channels[0]) and np.array_equal(mosaic[4:7, 4:7], channels[4])
    assert np.isnan(mosaic[3]).all() and np.isnan(mosaic[4:, 8:]).all()  # gaps and the empty sixth place


def test_class_names_of_the_fashion_subset() -> None:
    assert class_names(load_dataset("fashion-mini"))[9] == "Ankle boot"
    assert class_names(load_dataset("digits")) == [str(k) for k in range(10)]
