"""The bench description: a snapshot of a bench that needs no open hardware."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from calibration.session import describe, open_session
from drivers.bench import BenchSpec
from drivers.description import BenchDescription, BenchDescriptionError, description_path
from labctl.models.bench_layout import layout_for, layout_for_bench
from tests.conftest import bench_toml


def _bench_file(tmp_path: Path, text: str | None = None) -> Path:
    path = tmp_path / "bench.toml"
    path.write_text(text or bench_toml())
    return path


def test_description_holds_every_device_and_round_trips(tmp_path: Path) -> None:
    spec = BenchSpec.from_file(_bench_file(tmp_path))
    with open_session(spec) as session:
        d = session.description
    assert set(d.devices) == set(spec.devices)
    assert (d.devices["fourier_slm"].rows, d.devices["camera"].cols) == (128, 120)
    assert d.devices["input_slm"].sequence_length > 1 and d.devices["fourier_slm"].sequence_length == 1
    assert d.devices["shutter"].rows is None and d.devices["shutter"].identity.model == "SimShutter"
    assert d.calibration == {"slm_phase": "linear", "camera": None, "registration": None, "input_response": None}
    assert BenchDescription.from_dict(json.loads(json.dumps(d.to_dict()))) == d
    assert BenchDescription.load(d.save(tmp_path / "d.json")) == d


def test_first_open_saves_it_beside_the_bench_file_and_describe_then_opens_nothing(tmp_path: Path, monkeypatch) -> None:
    bench_file = _bench_file(tmp_path)
    spec = BenchSpec.from_file(bench_file)
    saved = description_path(bench_file)
    assert not saved.exists()
    first = describe(spec)  # never described: opens the bench once
    assert saved.is_file() and BenchDescription.load(saved) == first

    def no_hardware(self):
        raise AssertionError("the bench was opened")

    monkeypatch.setattr(BenchSpec, "open", no_hardware)
    assert describe(spec) == first
    layout = layout_for_bench(spec, 16, 4)
    assert layout == layout_for(first, 16, 4) and (layout.camera_rows, layout.fourier_cols) == (120, 128)


def test_a_changed_bench_file_is_described_anew(tmp_path: Path) -> None:
    bench_file = _bench_file(tmp_path)
    before = describe(BenchSpec.from_file(bench_file))
    bench_file.write_text(bench_toml().replace("rows = 120\ncols = 120", "rows = 110\ncols = 110"))
    spec = BenchSpec.from_file(bench_file)
    assert not before.describes(spec)
    after = describe(spec)
    assert after.devices["camera"].rows == 110 and BenchDescription.load(description_path(bench_file)) == after


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: {**d, "format": "other/1"}, "not a bench description"),
        (lambda d: {k: v for k, v in d.items() if k != "devices"}, "malformed"),
        (lambda d: {**d, "devices": {k: v for k, v in d["devices"].items() if k != "camera"}}, "lacks the device"),
        (lambda d: {**d, "devices": {**d["devices"], "camera": {**d["devices"]["camera"], "rows": None}}}, "no valid grid"),
        (lambda d: {**d, "optics": {"wavelength_m": -1.0}}, "positive"),
    ],
    ids=["format", "no-devices", "no-camera", "no-grid", "bad-optics"],
)
def test_a_malformed_description_is_refused_naming_the_file(tmp_path: Path, edit, message: str) -> None:
    with BenchSpec.from_toml(bench_toml()).open() as bench:
        good = BenchDescription.of(bench).to_dict()
    path = tmp_path / "bad.description.json"
    path.write_text(json.dumps(edit(good)))
    with pytest.raises(BenchDescriptionError, match=message):
        BenchDescription.load(path)


def test_unreadable_description_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "x.description.json"
    path.write_bytes(b"\xff\xfe not json")
    with pytest.raises(BenchDescriptionError, match="x.description.json"):
        BenchDescription.load(path)


def test_a_read_only_bench_folder_costs_a_warning_not_the_session(tmp_path: Path, monkeypatch) -> None:
    from calibration.session import UnsavedDescriptionWarning

    spec = BenchSpec.from_file(_bench_file(tmp_path))

    def refuse(self, path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(BenchDescription, "save", refuse)
    with pytest.warns(UnsavedDescriptionWarning, match="could not save the bench description"):
        described = describe(spec)
    assert described.devices["camera"].rows == 120 and not description_path(spec.file).exists()
