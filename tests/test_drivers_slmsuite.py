"""slmsuite adapters: phase convention against slmsuite's own SimulatedSLM, errors with pytest-mock."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.bench import BenchSpec
from drivers.errors import BenchFileError, DeviceError, DeviceNotFound, DeviceTimeout, InvalidSetting
from drivers.phase_table import TWO_PI
from drivers.slmsuite_camera import SlmsuiteCamera
from drivers.slmsuite_slm import SlmsuiteSLM, convention_table, realized_phase
from tests.contract.conftest import slmsuite_settings


def circular_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(np.angle(np.exp(1j * (a - b))))


def test_phase_zero_is_the_top_gray_level_as_in_slmsuite() -> None:
    table = convention_table(8, None)
    assert table.gray[0] == 255
    with SlmsuiteSLM("fourier_slm", "fourier", settings=slmsuite_settings()) as slm:
        slm.write_phase(np.zeros(slm.grid.shape))
        assert (slm.shown_gray == 255).all()


def test_write_phase_realizes_the_requested_phase_like_slmsuite() -> None:
    rng = np.random.default_rng(1)
    with SlmsuiteSLM("fourier_slm", "fourier", settings=slmsuite_settings()) as slm:
        phase = rng.uniform(-2 * np.pi, 4 * np.pi, slm.grid.shape)
        slm.write_phase(phase)
        ours = slm.shown_gray
        theirs = np.asarray(slm.slmsuite_slm.set_phase(phase.astype(np.float32))).astype(int)
        realized = realized_phase(8, None)
        step = TWO_PI / 256
        assert circular_error(realized[ours], phase).max() <= step  # ≤ one level (table sampling + rounding)
        assert circular_error(realized[ours], realized[theirs]).max() <= step + 1e-9


def test_measured_gamma_in_2pi_units_is_used() -> None:
    gamma = 0.9 * (np.arange(256) + 1) / 256  # a panel reaching only 0.9·2π
    with SlmsuiteSLM("fourier_slm", "fourier", settings=slmsuite_settings()) as slm:
        slm.slmsuite_slm.set_gamma(gamma)
        slm.use_slmsuite_gamma()
        target = np.full(slm.grid.shape, 1.0)
        slm.write_phase(target)
        shown = slm.shown_gray[0, 0]
        assert circular_error(np.mod(-TWO_PI * gamma[shown], TWO_PI), 1.0) < TWO_PI * 0.9 / 256 + 1e-9


def test_bench_file_names_models_and_rejects_unknown_ones() -> None:
    text = """
[input_slm]
driver = "mock"
[fourier_slm]
driver = "slmsuite"
model = "simulated"
settings = { resolution = [64, 48], pitch_um = [8, 8], wav_um = 0.532 }
[camera]
driver = "slmsuite"
model = "simulated"
settings = { pitch_um = [5, 5] }
"""
    with BenchSpec.from_toml(text).open() as bench:
        assert bench.fourier_slm.info.model == "SimulatedSLM"
        assert bench.camera.capture().data.shape == (48, 64)
    with pytest.raises(BenchFileError, match="unknown slmsuite SLM model 'nonesuch'.*meadowlark"):
        BenchSpec.from_toml(text.replace('model = "simulated"\nsettings = { res', 'model = "nonesuch"\nsettings = { res')).open()


def test_simulated_camera_needs_an_slmsuite_slm_on_the_bench() -> None:
    with pytest.raises(DeviceNotFound, match="fourier_slm"):
        SlmsuiteCamera("camera").open()


@pytest.mark.parametrize("raised, error, message", [
    (OSError("Blink_C_wrapper.dll not found"), DeviceNotFound, "SDK installation path"),
    (ImportError("No module named 'holoeye'"), DeviceNotFound, "vendor SDK"),
    (ValueError("slm_number 3 out of range"), InvalidSetting, "bench file"),
    (type("VmbTimeout", (Exception,), {})("frame"), DeviceTimeout, "powered"),
    (RuntimeError("board error 7"), DeviceError, "RuntimeError"),
])
def test_vendor_errors_on_open_are_mapped(mocker, raised: Exception, error: type, message: str) -> None:
    vendor_class = mocker.Mock(side_effect=raised)
    mocker.patch("drivers.slmsuite_slm.load_class", return_value=vendor_class)
    slm = SlmsuiteSLM("fourier_slm", "fourier", model="meadowlark", settings={"slm_number": 3})
    with pytest.raises(error, match=message) as err:
        slm.open()
    assert "slmsuite meadowlark(slm_number=3)" in str(err.value) and not slm.is_open


def test_vendor_write_failure_is_mapped_and_not_counted(mocker) -> None:
    with SlmsuiteSLM("fourier_slm", "fourier", settings=slmsuite_settings()) as slm:
        mocker.patch.object(slm.slmsuite_slm, "set_phase", side_effect=RuntimeError("USB transfer failed"))
        with pytest.raises(DeviceError, match="writing a pattern.*USB transfer failed"):
            slm.write_gray(np.zeros(slm.grid.shape, dtype=np.uint16))
        assert slm.frame_count == 0
