"""Efficiency analysis: FLOP counts and the `labctl efficiency` table, plot and JSON."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from labctl.cli import main
from labctl.cli.train import DEFAULT_TEACHER_CONVS
from labctl.models.efficiency import EfficiencyRow, backend_flops, conv_stack_flops, crossover_size, sclc_fft_flops
from labctl.models.teacher import TeacherConfig


def test_conv_flops_count_every_layer() -> None:
    config = TeacherConfig("classification", 1, 32, 10, depth=2, width=8)
    # 32x32x8 outputs from 1 channel, then 16x16x16 from 8 (3x3 kernels, 2 FLOPs per MAC + 4 for BN/ReLU)
    assert conv_stack_flops(config) == 32 * 32 * 8 * (18 * 1 + 4) + 16 * 16 * 16 * (18 * 8 + 4)
    assert conv_stack_flops(TeacherConfig("classification", 1, 64, 10, depth=2, width=8)) == 4 * conv_stack_flops(config)
    assert sclc_fft_flops(64, 1, 16) > 4 * sclc_fft_flops(32, 1, 16)  # N log N
    two = TeacherConfig("classification", 1, 32, 10, depth=2, width=8, convs=2)
    # the second convolution of each block reads the block's own channels
    assert conv_stack_flops(two) == conv_stack_flops(config) + 32 * 32 * 8 * (18 * 8 + 4) + 16 * 16 * 16 * (18 * 16 + 4)


def test_backend_flops_count_the_electronic_convolution() -> None:
    plain = backend_flops(16, 64, 14, 256, 10)
    assert plain == 16 * 64 * 64 * 3 + 2 * 16 * 14 * 14 * 256 + 2 * 256 * 10
    # a 3x3 convolution 16 -> 32 at 14 x 14, then the MLP reads 32 x 7 x 7 max-pooled features
    conv = backend_flops(16, 64, 14, 256, 10, conv_channels=32)
    assert conv == 16 * 64 * 64 * 3 + 14 * 14 * 32 * (18 * 16 + 5) + 2 * 32 * 7 * 7 * 256 + 2 * 256 * 10
    # it runs at the pooled size: the input size only changes the BatchNorm/pooling term
    assert backend_flops(16, 128, 14, 256, 10, 32) - conv == 16 * (128**2 - 64**2) * 3
    # a second one, 32 -> 32 at 7 x 7; the MLP then reads 32 x 4 x 4 (ceil pooling)
    two = backend_flops(16, 64, 14, 256, 10, conv_channels=32, conv_layers=2)
    assert two == conv - 2 * 32 * 7 * 7 * 256 + 7 * 7 * 32 * (18 * 32 + 5) + 2 * 32 * 4 * 4 * 256
    assert backend_flops(16, 64, 14, 256, 10, conv_channels=0, conv_layers=2) == plain


def test_cli_table_plot_and_json(tmp_path) -> None:
    result = CliRunner().invoke(main, ["efficiency", "--sizes", "16,32", "--rate", "1000", "--channels", "4", "--teacher-width", "4", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    last = json.loads(result.output.strip().splitlines()[-1])
    assert last["rate_hz"] == 1000 and set(last["teacher_ms"]) == {"16", "32"}
    assert all(v >= 1.0 for v in last["hybrid_ms"].values())  # one 1 ms frame at least
    assert (tmp_path / "efficiency.png").stat().st_size > 0
    rows = json.loads((tmp_path / "efficiency.json").read_text())["rows"]
    assert [r["size"] for r in rows] == [16, 32] and rows[1]["teacher_gflop"] > rows[0]["teacher_gflop"]
    convs = str(DEFAULT_TEACHER_CONVS + 1)
    deeper = CliRunner().invoke(main, ["efficiency", "--sizes", "16", "--channels", "4", "--teacher-width", "4", "--teacher-convs", convs, "--out", str(tmp_path / "2")])
    assert deeper.exit_code == 0, deeper.output
    assert json.loads((tmp_path / "2" / "efficiency.json").read_text())["rows"][0]["teacher_gflop"] > rows[0]["teacher_gflop"]
    conv = CliRunner().invoke(main, ["efficiency", "--sizes", "16", "--channels", "4", "--teacher-width", "4", "--backend-conv", "8", "--out", str(tmp_path / "3")])
    assert conv.exit_code == 0, conv.output
    assert json.loads((tmp_path / "3" / "efficiency.json").read_text())["rows"][0]["backend_gflop"] > rows[0]["backend_gflop"]
    args = ["efficiency", "--sizes", "16", "--channels", "4", "--teacher-width", "4", "--backend-conv", "8", "--backend-conv-layers", "2"]
    two = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "4")])
    assert two.exit_code == 0, two.output
    one_gflop = json.loads((tmp_path / "3" / "efficiency.json").read_text())["rows"][0]["backend_gflop"]
    assert json.loads((tmp_path / "4" / "efficiency.json").read_text())["rows"][0]["backend_gflop"] != one_gflop
    ignored = CliRunner().invoke(main, ["efficiency", "--sizes", "16", "--backend-conv-layers", "2", "--out", str(tmp_path / "5")])
    assert ignored.exit_code != 0 and "--backend-conv-layers needs a back-end convolution" in ignored.output


def _row(size: int, wins: bool) -> EfficiencyRow:
    return EfficiencyRow(size, 0.0, 0.0, 0.0, 2.0 if wins else 1.0, 0.1, 1.0, 1.1, 1.0, wins)


def test_crossover_is_where_optics_wins_from_then_on() -> None:
    assert crossover_size([_row(32, False), _row(64, True), _row(128, False), _row(256, True), _row(512, True)]) == 256
    assert crossover_size([_row(32, True), _row(64, True)]) == 32
    assert crossover_size([_row(32, True), _row(64, False)]) is None


def test_frame_rate_from_the_bench_and_device_in_the_json(tmp_path) -> None:
    args = ["efficiency", "--sizes", "16,32", "--channels", "4", "--teacher-width", "4", "--device", "cpu", "--out", str(tmp_path)]
    result = CliRunner().invoke(main, [*args, "--embedded-bench"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "efficiency.json").read_text())
    # the embedded bench: input modulator settles in 0.1 ms, the camera exposes 1 ms and reads 240 lines of 10 us
    assert summary["rate_hz"] == pytest.approx(1 / (1e-4 + 1e-3 + 240 * 10e-6))
    assert (summary["device"], summary["rate_source"]) == ("cpu", "embedded simulated bench")
    assert summary["crossover_px"] == crossover_size([EfficiencyRow(**r) for r in summary["rows"]])
    assert json.loads(result.output.strip().splitlines()[-1])["device"] == "cpu"
    both = CliRunner().invoke(main, [*args, "--embedded-bench", "--rate", "100"])
    assert both.exit_code != 0 and "give one" in both.output
