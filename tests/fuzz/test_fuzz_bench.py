"""Bench files with bad numbers, sizes beyond the memory budget, bytes that are not UTF-8, files that
are not regular files, and [calibration] paths that leave the bench file's folder: each refused with
a BenchFileError naming the file, table, key and value — before any device allocates anything —
and through ``labctl bench check`` as one line with exit 1."""

from __future__ import annotations

import math
import os
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from drivers.bench import MAX_BENCH_FILE_BYTES, BenchSpec
from drivers.errors import BenchFileError
from labctl.cli import main
from tests.conftest import bench_toml

BASE = tomllib.loads(bench_toml(ideal=True, noise=False))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def _bench_text(edits: dict[tuple[str, str], Any]) -> str:
    """The small test bench with ``(table, key) → value`` set."""
    raw = {table: dict(values) for table, values in BASE.items()}
    for (table, key), value in edits.items():
        raw.setdefault(table, {})[key] = value
    return "\n".join(
        f"[{table}]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in values.items()) for table, values in raw.items()
    )


def _refused(text: str, source: str = "BAD.toml") -> str:
    """The BenchFileError message for ``text``, whether refused at parsing or when the devices are built."""
    with pytest.raises(BenchFileError) as info:
        BenchSpec.from_toml(text, source=source).open().close()
    message = str(info.value)
    assert source in message, message
    return message


#: (table, key) → a value of the right type in its range, to show the bench opens with a sane one
NUMBERS = {
    ("optics", "wavelength_m"): 633e-9, ("optics", "f1_m"): 0.1, ("optics", "f2_m"): 0.1,
    ("camera", "exposure_s"): 2e-3, ("camera", "rows"): 96, ("camera", "cols"): 96, ("camera", "pitch_m"): 10e-6,
    ("camera", "bit_depth"): 10, ("camera", "line_time_s"): 5e-6, ("camera", "defocus_m"): 1e-4,
    ("camera", "misalignment"): 0.5, ("camera", "buffer_size"): 16, ("camera", "seed"): 7,
    ("fourier_slm", "rows"): 64, ("fourier_slm", "pitch_m"): 8e-6, ("fourier_slm", "bit_depth"): 10,
    ("fourier_slm", "settle_time_s"): 1e-3, ("fourier_slm", "seed"): 9,
    ("input_slm", "laser_power_w"): 1e-6, ("input_slm", "cols"): 80, ("shutter", "switch_time_s"): 1e-3,
}
#: every one of these is out of range (or of the wrong type) for every key above
BAD_VALUES = [math.inf, -math.inf, math.nan, -1, 1e12, True, "x"]


@pytest.mark.parametrize("value", BAD_VALUES, ids=[repr(v) for v in BAD_VALUES])
@pytest.mark.parametrize("where", NUMBERS, ids=[f"{t}.{k}" for t, k in NUMBERS])
def test_bad_number_is_refused_naming_table_key_and_value(where: tuple[str, str], value: Any) -> None:
    message = _refused(_bench_text({where: value}))
    table, key = where
    assert f"[{table}]" in message and key in message and repr(value) in message, message


def test_every_number_in_range_opens() -> None:
    """The counterpart of the bad numbers: the same keys with sane values build a bench."""
    BenchSpec.from_toml(_bench_text(NUMBERS), source="GOOD.toml").open().close()


@pytest.mark.parametrize(("key", "value"), [("disconnect_at_frames", [3, math.nan]), ("disconnect_at_frames", [-2]),
                                            ("disconnect_at_frames", "often"), ("missed_trigger_rate", math.inf)])
def test_bad_fault_argument_is_refused(key: str, value: Any) -> None:
    message = _refused(_bench_text({("camera", key): value}))
    assert "[camera]" in message and key in message, message


GRIDS = {  # rows, cols: what budget they exceed
    "10^6 x 10^6": (10**6, 10**6, "drivers.limits.GRID_MEMORY_BUDGET_BYTES"),
    "65536 x 65536": (65536, 65536, "drivers.limits.GRID_MEMORY_BUDGET_BYTES"),
    "9000 x 9000": (9000, 9000, "drivers.limits.GRID_MEMORY_BUDGET_BYTES"),
    "2 x 2^25 + 1": (2, 2**25 + 1, "drivers.limits.GRID_MEMORY_BUDGET_BYTES"),
    "simulated 3000 x 3000": (3000, 3000, "mock_hw.budget.MEMORY_BUDGET_BYTES"),
}


@pytest.mark.parametrize("role", ["camera", "fourier_slm", "input_slm"])
@pytest.mark.parametrize("grid", GRIDS, ids=list(GRIDS))
def test_grid_beyond_the_memory_budget_is_refused_with_its_estimate(role: str, grid: str) -> None:
    rows, cols, budget = GRIDS[grid]
    message = _refused(_bench_text({(role, "rows"): rows, (role, "cols"): cols}))
    assert f"[{role}]" in message and f"{rows}x{cols}" in message and budget in message, message
    assert "would need about" in message and "refused before allocating" in message, message


NOT_UTF8 = {
    "0xff in a comment": b"# \xff\n",
    "latin-1 name": "[bench]\nname = \"b\xe9nch\"\n".encode("latin-1"),
    "truncated sequence": b"# \xc3\n",
    "UTF-16": "[bench]\nname = \"x\"\n".encode("utf-16"),
}


@pytest.mark.parametrize("case", NOT_UTF8, ids=list(NOT_UTF8))
def test_non_utf8_bench_file_names_the_file(tmp_path: Path, case: str) -> None:
    path = tmp_path / "bench.toml"
    path.write_bytes(NOT_UTF8[case] + _bench_text({}).encode())
    with pytest.raises(BenchFileError, match="not UTF-8 text") as info:
        BenchSpec.from_file(path)
    assert str(path) in str(info.value)


def _fifo(tmp: Path) -> Path:
    os.mkfifo(tmp / "fifo.toml")
    return tmp / "fifo.toml"


def _huge(tmp: Path) -> Path:
    path = tmp / "huge.toml"
    with path.open("wb") as f:
        f.truncate(MAX_BENCH_FILE_BYTES + 1)
    return path


NOT_FILES = {
    "/dev/zero": (lambda tmp: Path("/dev/zero"), "not a regular file"),
    "a FIFO": (_fifo, "not a regular file"),
    "a directory": (lambda tmp: tmp, "not a regular file"),
    "over the size limit": (_huge, "larger than"),
    "missing": (lambda tmp: tmp / "none.toml", "cannot read"),
}


@pytest.mark.parametrize("case", NOT_FILES, ids=list(NOT_FILES))
def test_bench_path_that_is_no_bench_file_is_refused_before_reading(tmp_path: Path, case: str) -> None:
    make, words = NOT_FILES[case]
    path = make(tmp_path)
    with pytest.raises(BenchFileError, match=words) as info:
        BenchSpec.from_file(path)
    assert str(path) in str(info.value)


ESCAPES = ["../x.json", "../../etc/passwd", "cal/../../x.json", "cal/../../../../etc/passwd", "./../bench/../../x.json",
           "link/passwd"]


@pytest.mark.parametrize("kind", ["slm_phase", "camera", "registration"])
@pytest.mark.parametrize("value", ESCAPES)
def test_calibration_path_leaving_the_bench_folder_is_refused(tmp_path: Path, kind: str, value: str) -> None:
    folder = tmp_path / "bench"
    folder.mkdir()
    (folder / "link").symlink_to("/etc")
    path = folder / "bench.toml"
    path.write_text(_bench_text({("calibration", kind): value}))
    with pytest.raises(BenchFileError) as info:
        BenchSpec.from_file(path)
    message = str(info.value)
    assert str(path) in message and f"[calibration] {kind} = {value!r}" in message and "outside" in message, message


NOT_PATHS = {"int": (3, "3"), "bool": (True, "true"), "float": (1.5, "1.5"), "list": ([], "[]"), "empty": ("", '""'),
             "NUL": ("a\0b", '"a\\u0000b"')}


@pytest.mark.parametrize("case", NOT_PATHS, ids=list(NOT_PATHS))
def test_calibration_entry_that_is_no_path_is_refused(case: str) -> None:
    value, literal = NOT_PATHS[case]
    message = _refused(_bench_text({}) + f"[calibration]\ncamera = {literal}\n")
    assert f"[calibration] camera = {value!r} is not a path" in message, message


CLI = {
    "wavelength inf": ({("optics", "wavelength_m"): math.inf}, "[optics] wavelength_m"),
    "exposure inf": ({("camera", "exposure_s"): math.inf}, "[camera] exposure_s = inf"),
    "exposure -1": ({("camera", "exposure_s"): -1.0}, "exposure_s = -1.0"),
    "buffer_size -1": ({("camera", "buffer_size"): -1}, "buffer_size = -1"),
    "10^6 camera": ({("camera", "rows"): 10**6, ("camera", "cols"): 10**6}, "1000000x1000000"),
    "record outside": ({("calibration", "slm_phase"): "../../etc/passwd"}, "leads outside"),
}


@pytest.mark.parametrize("case", CLI, ids=list(CLI))
def test_bench_check_refuses_in_one_line(tmp_path: Path, case: str) -> None:
    edits, words = CLI[case]
    path = tmp_path / "BAD.toml"
    path.write_text(_bench_text(edits))
    result = CliRunner().invoke(main, ["bench", "check", "--bench", str(path), "--out", str(tmp_path / "out")])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert lines[0].startswith("Error: BenchFileError: ") and str(path) in lines[0] and words in lines[0], result.output
    assert "Traceback" not in result.output


def test_bench_check_refuses_non_utf8_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "BAD.toml"
    path.write_bytes(b"# \xff\n" + _bench_text({}).encode())
    result = CliRunner().invoke(main, ["bench", "check", "--bench", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and result.output.strip().count("\n") == 0, result.output
    assert "not UTF-8 text" in result.output and str(path) in result.output
