"""Channels that do not fit one camera frame are multiplexed: one Fourier mask and camera frame per
channel group, read back in channel order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from drivers.bench import BenchSpec
from labctl.data import load_dataset
from labctl.masks.export import export_masks
from labctl.masks.mask_file import MaskFile, MaskFileError
from labctl.models.bench_layout import layout_for_bench
from labctl.models.optics_aware import OpticsAwareConfig, OpticsAwareStudent, ideal_affine
from labctl.optics.layout import LayoutError, OpticalLayout
from labctl.records.report import build_report
from labctl.records.run_record import RunRecord
from labctl.runner.optical_inference import OpticalInference
from labctl.runner.session import RunOptions, run_masks
from labctl.training.loop import TrainSettings
from labctl.training.train import train_student

#: the embedded bench: 240x240 camera at 13 µm, 200x200 input modulator at 15 µm, f1 = f2
EMBEDDED = BenchSpec.default()


def test_channels_that_fit_one_frame_are_not_multiplexed_and_more_are() -> None:
    one = layout_for_bench(EMBEDDED, 28, 16)
    assert (len(one.tiles), one.channels, one.channel_groups) == (16, 16, 1)
    # 32 tiles of a 6 x 6 grid are 40 px, too small for a 28-px image (32 camera px) plus 2 x 4 px margins
    many = layout_for_bench(EMBEDDED, 28, 32)
    assert (len(many.tiles), many.channels, many.channel_groups) == (25, 32, 2)
    assert list(many.group_channels(0)) == list(range(25)) and list(many.group_channels(1)) == list(range(25, 32))
    assert many.image_scale >= 1 and many.tile_size >= many.footprint_px + 8 - 1


def test_a_layout_refuses_what_cannot_work_with_the_numbers() -> None:
    numbers = layout_for_bench(EMBEDDED, 28, 1)
    small_camera = {k: getattr(numbers, k) for k in _NUMBER_KEYS} | {"camera_rows": 30, "camera_cols": 30}
    with pytest.raises(LayoutError, match=r"not even one channel fits: a 28-px image at 1x covers 32 camera px, 41 px with 4 px margins.*30x30"):
        OpticalLayout.tiled(small_camera, 28, 4)
    with pytest.raises(LayoutError, match="a 28-px image at 9x does not fit the 200x200 input modulator"):
        OpticalLayout.tiled({k: getattr(numbers, k) for k in _NUMBER_KEYS}, 28, 4, image_scale=9)
    with pytest.raises(LayoutError, match="a tile would stay unused"):
        OpticalLayout.from_dict({**numbers.to_dict(), "channels": 0, "tiles": [[0, 0], [0, 100]], "tile_size": 40, "channels": 1})


_NUMBER_KEYS = ("wavelength_m", "f1_m", "f2_m", "fourier_rows", "fourier_cols", "fourier_pitch_m", "fourier_bit_depth",
                "input_rows", "input_cols", "input_pitch_m", "camera_rows", "camera_cols", "camera_pitch_m")


def test_a_layout_stored_before_multiplexing_has_one_channel_per_tile() -> None:
    layout = layout_for_bench(EMBEDDED, 16, 4)
    old = {k: v for k, v in layout.to_dict().items() if k != "channels"}
    assert OpticalLayout.from_dict(old) == layout and layout.channel_groups == 1


def test_readout_puts_each_groups_tiles_in_channel_order() -> None:
    layout = layout_for_bench(EMBEDDED, 28, 32)
    back = torch.nn.Identity()
    processor = OpticalInference(back, layout, ideal_affine(layout), "classification", 10, oversample=1)
    frames = np.stack([np.full((2, 240, 240), g + 1.0, np.float32) for g in range(2)], axis=1)  # (B, groups, H, W)
    read = processor.readout(frames)
    assert read.shape == (2, 32, 28, 28)
    assert torch.allclose(read[:, :25], torch.ones(1)) and torch.allclose(read[:, 25:], torch.full((1,), 2.0))


def test_mask_file_holds_one_mask_per_group_and_refuses_another_count(tmp_path: Path) -> None:
    layout = layout_for_bench(EMBEDDED, 28, 32)
    phase = np.zeros((2, 256, 256))
    masks = MaskFile(phase_rad=phase, gray=np.zeros((2, 256, 256), np.uint16), method="sclc-double-phase", layout=layout,
                     model={}, slm={}, calibration={"slm_phase": "linear"})
    assert masks.frames_per_input == 2 and [g.shape for g in MaskFile.load(masks.save(tmp_path / "m.h5")).group_gray()] == [(256, 256)] * 2
    with pytest.raises(MaskFileError, match=r"32 channels in 2 frame\(s\).*need \(2, 256, 256\)"):
        MaskFile(phase_rad=phase[0], gray=np.zeros((256, 256), np.uint16), method="sclc-double-phase", layout=layout,
                 model={}, slm={}, calibration={})


@pytest.fixture(scope="module")
def digits() -> object:
    return load_dataset("digits", size=28)


def test_the_default_32_channel_sclc_student_exports_and_runs_on_the_embedded_bench(digits, tmp_path_factory) -> None:
    root = tmp_path_factory.mktemp("mux")
    torch.manual_seed(0)
    # 2 epochs: after 1 the student reads 38 % digitally, and 40 inputs through the uncalibrated bench sat at the 0.2 below
    student = train_student(digits, None, TrainSettings(epochs=2, train_limit=300), kind="sclc", out_dir=root / "s", channels=(32,))
    masks = export_masks(student.path, EMBEDDED, root / "m.h5", encoding="double-phase")
    assert masks.frames_per_input == 2 and masks.gray.shape == (2, 256, 256)
    assert not np.array_equal(masks.gray[0], masks.gray[1])
    summary, out = run_masks(EMBEDDED, root / "m.h5", digits, root / "run.h5", options=RunOptions(limit=40, batch_size=16, save_frames=True))
    assert summary.processed == 40
    with RunRecord.open(out) as record:
        assert record.attr("frames_per_input") == 2
        assert record.attr("last_summary")["camera_frames_per_s"] == pytest.approx(2 * record.attr("last_summary")["frames_per_s"])
        assert record.frames(slice(0, 3)).shape == (3, 2, 240, 240)
        assert (record.column("prediction") == record.column("label")).mean() > 0.2  # well above chance (0.1)
    report = build_report(out).summary()
    assert report["frames_per_input"] == 2 and report["wall_inputs_per_s"] == pytest.approx(report["wall_frames_per_s"] / 2)


def test_a_multiplexed_optics_aware_student_trains_one_mask_per_group(digits) -> None:
    layout = layout_for_bench(EMBEDDED, 28, 30)
    model = OpticsAwareStudent(OpticsAwareConfig("classification", 1, 28, 10, layout=layout.to_dict()))
    assert model.phase.value.shape == (2, 256, 256) and model.config.channels == 30
    x = digits.train.images[:3].float() / 255
    assert model.frames(x).shape == (3, 2, 240, 240) and model.detected(x).shape == (3, 30, 28, 28)
    model(x).sum().backward()
    assert model.phase.value.grad is not None and model.phase.value.grad[1].abs().sum() > 0


def test_one_groups_mask_is_the_gray_array_itself_so_the_slm_is_not_rewritten_per_batch() -> None:
    layout = layout_for_bench(EMBEDDED, 28, 16)
    gray = np.zeros((256, 256), np.uint16)
    masks = MaskFile(phase_rad=np.zeros((256, 256)), gray=gray, method="sclc-double-phase", layout=layout, model={}, slm={},
                     calibration={})
    assert masks.group_gray()[0] is masks.gray and masks.group_gray()[0] is masks.group_gray()[0]
