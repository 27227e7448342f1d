"""Bench description files: what is accepted and how bad ones are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.bench import BenchSpec
from drivers.errors import BenchFileError
from drivers.registry import DeviceKind, driver_names
from tests.conftest import bench_toml


def test_embedded_default_bench_parses_with_all_roles() -> None:
    spec = BenchSpec.default()
    assert set(spec.devices) >= {"input_slm", "fourier_slm", "camera"}
    assert spec.optics.wavelength_m == pytest.approx(532e-9)


def test_bench_file_from_disk_resolves_calibration_paths(tmp_path: Path) -> None:
    path = tmp_path / "bench.toml"
    path.write_text(bench_toml() + '\n[calibration]\nfourier_slm = "cal/phase.json"\n')
    spec = BenchSpec.from_file(path)
    assert spec.calibration["fourier_slm"] == str(tmp_path / "cal" / "phase.json")
    assert spec.devices["camera"].args["rows"] == 120


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace('[camera]\ndriver = "mock"', "[camera]"), r"\[camera\] has no driver"),
        (lambda t: t.replace('[fourier_slm]\ndriver = "mock"', '[fourier_slm]\ndriver = "meadowlark9000"'), r"no slm driver named 'meadowlark9000'"),
        (lambda t: t.replace("seed = 3", "seed = 3\nexposure_ms = 4"), r"\[camera\].*no argument\(s\) \['exposure_ms'\]"),
        (lambda t: t.replace("[shutter]", "[shuter]"), r"unknown table\(s\) \['shuter'\]"),
        (lambda t: t.replace("f1_m = 0.05", "f1_m = -1"), r"f1_m must be a positive"),
        (lambda t: t.replace("f1_m = 0.05", "focal = 0.05"), r"\[optics\]"),
        (lambda t: t + "\n[camera\n", r"not valid TOML"),
        (lambda t: t.replace('driver = "mock"\nseed = 1', "driver = 3\nseed = 1"), r"driver must be a string"),
    ],
)
def test_bad_bench_files_are_refused_with_a_message_naming_the_problem(edit, message) -> None:
    with pytest.raises(BenchFileError, match=message):
        BenchSpec.from_toml(edit(bench_toml()), source="test.toml")


def test_missing_role_is_named() -> None:
    text = bench_toml()
    start = text.index("[input_slm]")
    end = text.index("[fourier_slm]")
    with pytest.raises(BenchFileError, match=r"missing required table \[input_slm\]"):
        BenchSpec.from_toml(text[:start] + text[end:], source="test.toml")


def test_bad_argument_value_is_reported_at_open_with_the_role() -> None:
    spec = BenchSpec.from_toml(bench_toml().replace("bit_depth", "x").replace("seed = 2", "seed = 2\nbit_depth = 40"))
    with pytest.raises(BenchFileError, match=r"\[fourier_slm\].*bit_depth = 40 is not an integer in 1..16"):
        spec.open()


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(BenchFileError, match="missing.toml: cannot read"):
        BenchSpec.from_file(tmp_path / "missing.toml")


def test_registry_lists_mock_drivers_for_every_kind() -> None:
    for kind in DeviceKind:
        assert "mock" in driver_names(kind)
