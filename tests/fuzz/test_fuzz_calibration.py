"""Calibration records a bench file makes active, damaged or forged: camera maps that would make
frames non-finite (PRNU 0, NaN dark map, ...), registrations that put the tiles off the sensor,
record and arrays paths that leave their folder or name no regular file, arrays over the size limit
or holding pickled objects. Each is refused with a CalibrationRecordError (or BenchFileError for the
bench file's own paths) naming the record file and the value, when the bench session opens."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from calibration import records
from calibration.errors import CalibrationMismatch, CalibrationRecordError
from calibration.records import CalibrationRecord, load_record
from calibration.session import open_session
from drivers.bench import BenchSpec
from drivers.device import DeviceInfo
from tests.conftest import bench_toml

CAMERA = DeviceInfo(driver="mock", vendor="labctl", model="SimCam", serial="SIM-CAM-3")
SENSOR = (120, 120)
#: input modulator px (col, row) → camera px: the test bench's nominal 4f image (inverted, 15/12 µm)
INPUT_TO_CAMERA = [[-1.25, 0.0, 121.375], [0.0, -1.25, 121.375]]


def _camera_record() -> CalibrationRecord:
    rng = np.random.default_rng(0)
    return CalibrationRecord(
        kind="camera", device=CAMERA, wavelength_m=532e-9, method="emva1288",
        params={"gain_dn_per_e": 0.5, "read_noise_e": 2.0, "dark_offset_dn": 10.0, "saturation_dn": 4000.0},
        residuals={"prnu_rms": 0.01},
        arrays={"dark_map": np.full(SENSOR, 10.0, np.float32), "prnu": (1 + 0.01 * rng.normal(size=SENSOR)).astype(np.float32),
                "hot_pixels": np.zeros(SENSOR, bool)},
        id="camera-SIM-CAM-3-fuzz",
    )


def _registration_record() -> CalibrationRecord:
    return CalibrationRecord(
        kind="registration", device=CAMERA, wavelength_m=532e-9, method="spots",
        params={"input_to_camera": INPUT_TO_CAMERA, "fourier_to_camera": [[3.0, 0.0, 59.5], [0.0, 3.0, 59.5]]},
        residuals={"rms_px": 0.1}, id="registration-SIM-CAM-3-fuzz",
    )


def _bench(folder: Path, record: CalibrationRecord) -> tuple[BenchSpec, Path]:
    path = record.save(folder)
    bench = folder / "bench.toml"
    bench.write_text(bench_toml(ideal=True, noise=False) + f'\n[calibration]\n{record.kind} = "{path.name}"\n')
    return BenchSpec.from_file(bench), path


def _refused(spec: BenchSpec, path: Path, *words: str, error: type[Exception] = CalibrationRecordError) -> str:
    with pytest.raises(error) as info:
        with open_session(spec):
            pass
    message = str(info.value)
    assert str(path) in message, message
    for word in words:
        assert word in message, message
    return message


@pytest.mark.parametrize("make", [_camera_record, _registration_record], ids=["camera", "registration"])
def test_sound_records_are_applied(tmp_path: Path, make: Callable[[], CalibrationRecord]) -> None:
    spec, _ = _bench(tmp_path, make())
    with open_session(spec) as session:
        assert session.record_ids[make().kind].endswith("-fuzz")


def _set(name: str, change: Callable[[np.ndarray], np.ndarray]) -> Callable[[CalibrationRecord], None]:
    def edit(record: CalibrationRecord) -> None:
        record.arrays[name] = change(np.array(record.arrays[name]))
    return edit


def _at(value: float, where: tuple[int, int] = (7, 11)) -> Callable[[np.ndarray], np.ndarray]:
    def change(a: np.ndarray) -> np.ndarray:
        a[where] = value
        return a
    return change


def _param(key: str, value: Any) -> Callable[[CalibrationRecord], None]:
    return lambda record: record.params.__setitem__(key, value)


CAMERA_CASES: dict[str, tuple[Callable[[CalibrationRecord], None], str]] = {
    "PRNU all 0": (_set("prnu", np.zeros_like), "prnu = 0.0"),
    "PRNU one pixel 0": (_set("prnu", _at(0.0)), "prnu = 0.0 at pixel (row 7, col 11)"),
    "PRNU NaN": (_set("prnu", _at(np.nan, (0, 0))), "prnu = nan at pixel (row 0, col 0)"),
    "PRNU inf": (_set("prnu", _at(np.inf, (119, 119))), "prnu = inf at pixel (row 119, col 119)"),
    "PRNU negative": (_set("prnu", lambda a: -a), "prnu = -"),
    "PRNU 100": (_set("prnu", _at(100.0)), "prnu = 100.0"),
    "PRNU 1e-3": (_set("prnu", _at(1e-3)), "prnu = 0.001"),
    "dark map all NaN": (_set("dark_map", lambda a: np.full_like(a, np.nan)), "dark_map has 14400 NaN/inf"),
    "dark map one NaN": (_set("dark_map", _at(np.nan)), "dark_map has 1 NaN/inf"),
    "dark map -inf": (_set("dark_map", _at(-np.inf)), "dark_map has 1 NaN/inf"),
    "dark map 1-D": (_set("dark_map", lambda a: a.ravel()), "dark_map has shape (14400,)"),
    "PRNU cropped": (_set("prnu", lambda a: a[:-1]), "prnu has shape (119, 120)"),
    "hot pixels as floats": (_set("hot_pixels", lambda a: a.astype(np.float32)), "hot_pixels has dtype float32"),
    "dark map as text": (_set("dark_map", lambda a: a.astype(str)), "dark_map has dtype <U"),
    "no PRNU": (lambda r: r.arrays.pop("prnu"), "lacks the array 'prnu'"),
    "gain 0": (_param("gain_dn_per_e", 0.0), "gain_dn_per_e = 0.0"),
    "gain NaN": (_param("gain_dn_per_e", float("nan")), "gain_dn_per_e = nan"),
    "gain as text": (_param("gain_dn_per_e", "0.5"), "gain_dn_per_e = '0.5'"),
    "read noise inf": (_param("read_noise_e", float("inf")), "read_noise_e = inf"),
    "dark offset missing": (lambda r: r.params.pop("dark_offset_dn"), "dark_offset_dn = None"),
    "saturation -1": (_param("saturation_dn", -1.0), "saturation_dn = -1.0"),
}


@pytest.mark.parametrize("case", CAMERA_CASES, ids=list(CAMERA_CASES))
def test_camera_record_that_would_make_frames_non_finite_is_refused(tmp_path: Path, case: str) -> None:
    edit, words = CAMERA_CASES[case]
    record = _camera_record()
    edit(record)
    spec, path = _bench(tmp_path, record)
    _refused(spec, path, words, "camera-SIM-CAM-3-fuzz")


def test_camera_record_of_another_sensor_size_is_a_mismatch(tmp_path: Path) -> None:
    record = _camera_record()
    record.arrays = {k: v[:110, :110] for k, v in record.arrays.items()}
    spec, path = _bench(tmp_path, record)
    _refused(spec, path, "110x110", "sensor is 120x120", error=CalibrationMismatch)


def _affine(key: str, change: Callable[[np.ndarray], Any]) -> Callable[[CalibrationRecord], None]:
    def edit(record: CalibrationRecord) -> None:
        record.params[key] = change(np.array(record.params[key], dtype=np.float64))
    return edit


def _shift(dx: float, dy: float) -> Callable[[np.ndarray], Any]:
    return lambda a: (a + np.array([[0, 0, dx], [0, 0, dy]])).tolist()


REGISTRATION_CASES: dict[str, tuple[Callable[[CalibrationRecord], None], str]] = {
    "translation 1e9 px": (_affine("input_to_camera", _shift(1e9, 0)), "off the 120x120 sensor"),
    "translation -1e9 px in y": (_affine("input_to_camera", _shift(0, -1e9)), "off the 120x120 sensor"),
    "translation 200 px": (_affine("input_to_camera", _shift(200, 200)), "off the 120x120 sensor"),
    "scale 100": (_affine("input_to_camera", lambda a: (a * [[100, 100, 1], [100, 100, 1]]).tolist()), "off the 120x120 sensor"),
    "not inverted, same shift": (_affine("input_to_camera", lambda a: (a * [[-1, -1, 1], [-1, -1, 1]]).tolist()), "off the 120x120 sensor"),
    "degenerate": (_affine("input_to_camera", lambda a: (a * [[1, 1, 1], [0, 0, 1]]).tolist()), "degenerate"),
    "NaN entry": (_affine("input_to_camera", _at(np.nan, (0, 0))), "input_to_camera = [[nan"),
    "inf shift": (_affine("input_to_camera", _at(np.inf, (1, 2))), "is not a finite 2x3 matrix"),
    "3x3": (_affine("input_to_camera", lambda a: np.vstack([a, [0, 0, 1]]).tolist()), "is not a finite 2x3 matrix"),
    "text": (_param("input_to_camera", "identity"), "input_to_camera = 'identity'"),
    "ragged": (_param("input_to_camera", [[1, 0, 0], [0, 1]]), "is not a 2x3 matrix of numbers"),
    "Fourier map NaN": (_affine("fourier_to_camera", _at(np.nan, (0, 2))), "fourier_to_camera = "),
    "no Fourier map": (lambda r: r.params.pop("fourier_to_camera"), "lacks 'fourier_to_camera'"),
    "rms NaN": (lambda r: r.residuals.__setitem__("rms_px", float("nan")), "rms_px = nan"),
    "rms -1": (lambda r: r.residuals.__setitem__("rms_px", -1.0), "rms_px = -1.0"),
}


@pytest.mark.parametrize("case", REGISTRATION_CASES, ids=list(REGISTRATION_CASES))
def test_registration_that_misplaces_the_tiles_is_refused(tmp_path: Path, case: str) -> None:
    edit, words = REGISTRATION_CASES[case]
    record = _registration_record()
    edit(record)
    spec, path = _bench(tmp_path, record)
    _refused(spec, path, words, "registration-SIM-CAM-3-fuzz")


def _edit_doc(change: Callable[[dict[str, Any], Path], None]) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        doc = json.loads(path.read_text())
        change(doc, path.parent)
        path.write_text(json.dumps(doc))
    return edit


def _arrays_to(name: str) -> Callable[[Path], None]:
    return _edit_doc(lambda doc, folder: doc.__setitem__("arrays", name))


def _arrays_link(target: str) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        (path.parent / "link.npz").symlink_to(target)
        _arrays_to("link.npz")(path)
    return edit


def _arrays_fifo(path: Path) -> None:
    os.mkfifo(path.parent / "fifo.npz")
    _arrays_to("fifo.npz")(path)


def _arrays_file(content: bytes) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        (path.parent / "other.npz").write_bytes(content)
        _arrays_to("other.npz")(path)
    return edit


def _pickled_arrays(path: Path) -> None:
    npz = path.with_suffix(".npz")
    arrays = dict(np.load(npz))
    arrays["dark_map"] = np.array([{"a": 1}], dtype=object)
    np.savez(npz, **arrays)


def _npy_arrays(path: Path) -> None:
    np.save(path.parent / "plain.npy", np.zeros(3))
    _arrays_to("plain.npy")(path)


FILE_CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "arrays ../../etc/passwd": (_arrays_to("../../etc/passwd"), "arrays = '../../etc/passwd' leads outside the record's folder"),
    "arrays /etc/passwd": (_arrays_to("/etc/passwd"), "arrays = '/etc/passwd' leads outside the record's folder"),
    "arrays sub/../../x.npz": (_arrays_to("sub/../../x.npz"), "arrays = 'sub/../../x.npz' leads outside"),
    "arrays link out": (_arrays_link("/etc/passwd"), "arrays = 'link.npz' leads outside"),
    "arrays link to /dev/zero": (_arrays_link("/dev/zero"), "arrays = 'link.npz' leads outside"),
    "arrays a FIFO": (_arrays_fifo, "is not a regular file"),
    "arrays the folder": (_arrays_to("."), "is not a regular file"),
    "arrays a number": (_arrays_to(3), "arrays = 3 is not a file name"),  # type: ignore[arg-type]
    "arrays missing": (_arrays_to("none.npz"), "cannot read arrays file"),
    "arrays not a zip": (_arrays_file(b"PK\x03\x04 not really"), "is not a plain .npz"),
    "arrays text": (_arrays_file(b"dark_map = 0\n"), "is not a plain .npz"),
    "arrays a .npy": (_npy_arrays, "is not an .npz archive"),
    "arrays pickled object": (_pickled_arrays, "is not a plain .npz"),
    "record wavelength NaN": (_edit_doc(lambda doc, folder: doc.__setitem__("wavelength_m", float("nan"))), "wavelength_m = nan"),
    "record params a list": (_edit_doc(lambda doc, folder: doc.__setitem__("params", [1, 2])), "params is not a JSON object"),
    "record not UTF-8": (lambda path: path.write_bytes(b'{"format": "\xff"}'), "not UTF-8 text"),
    "record not JSON": (lambda path: path.write_text("{format"), "not valid JSON"),
}


@pytest.mark.parametrize("case", FILE_CASES, ids=list(FILE_CASES))
def test_damaged_record_file_is_refused(tmp_path: Path, case: str) -> None:
    edit, words = FILE_CASES[case]
    spec, path = _bench(tmp_path, _camera_record())
    edit(path)
    _refused(spec, path, words)


def test_arrays_that_unpack_beyond_the_limit_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A compressed .npz can be small on disk and huge unpacked: the unpacked size is judged."""
    spec, path = _bench(tmp_path, _camera_record())
    on_disk = path.with_suffix(".npz").stat().st_size
    monkeypatch.setattr(records, "MAX_ARRAYS_BYTES", on_disk + 1)  # the maps unpack to ~130 kB, compress to less
    _refused(spec, path, "unpacks to", f"over the {on_disk + 1}-byte limit")


def _record_path(kind: str, target: Callable[[Path], Path]) -> Callable[[Path], tuple[Path, str]]:
    def make(folder: Path) -> tuple[Path, str]:
        path = target(folder)
        (folder / "bench.toml").write_text(bench_toml() + f'\n[calibration]\n{kind} = "{path}"\n')
        return path, kind
    return make


def _huge_record(folder: Path) -> Path:
    path = folder / "huge.json"
    with path.open("wb") as f:
        f.truncate(records.MAX_RECORD_BYTES + 1)
    return path


def _fifo_record(folder: Path) -> Path:
    os.mkfifo(folder / "fifo.json")
    return folder / "fifo.json"


RECORD_PATHS = {
    "/dev/zero": (lambda folder: Path("/dev/zero"), "not a regular file"),
    "a FIFO": (_fifo_record, "not a regular file"),
    "a directory": (lambda folder: folder, "not a regular file"),
    "over the size limit": (_huge_record, f"over the {records.MAX_RECORD_BYTES}-byte limit"),
    "/etc/passwd": (lambda folder: Path("/etc/passwd"), "not valid JSON"),
}


@pytest.mark.parametrize("kind", ["slm_phase", "camera", "registration"])
@pytest.mark.parametrize("case", RECORD_PATHS, ids=list(RECORD_PATHS))
def test_record_path_that_is_no_record_is_refused_before_reading(tmp_path: Path, case: str, kind: str) -> None:
    target, words = RECORD_PATHS[case]
    path, _ = _record_path(kind, target)(tmp_path)
    spec = BenchSpec.from_file(tmp_path / "bench.toml")
    message = _refused(spec, path, words)
    assert message.startswith(f"calibration record {path}"), message


def test_load_record_refuses_dev_zero_directly() -> None:
    with pytest.raises(CalibrationRecordError, match="calibration record /dev/zero: not a regular file"):
        load_record("/dev/zero")
