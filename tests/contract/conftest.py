"""Driver fixtures for the generic contract suites: every implementation that can run here.

Each fixture yields an *open* device; the suites only use the interfaces of ``drivers.slm``,
``drivers.camera`` and ``drivers.instruments``, and the capabilities of ``drivers.capabilities``
that a driver claims (every SLM here claims pattern read-back, which the SLM suite uses to see what
was shown).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from drivers.bench import BenchContext, BenchSpec, OpticsSpec
from drivers.camera import Camera
from drivers.instruments import PowerMeter, Shutter
from drivers.slm import SLM
from tests.conftest import bench_toml


def viky_cti() -> str | None:
    try:
        import genicam
    except ImportError:
        return None
    path = Path(genicam.__file__).parent / "viky.cti"
    return str(path) if path.is_file() else None


def write_test_video(path: Path, frames: int = 12, shape: tuple[int, int] = (48, 64), fps: float = 25.0) -> Path:
    """A small gray video whose frame i has mean level ≈ 10·i (MJPG keeps flat fields exact)."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (shape[1], shape[0]), isColor=False)
    assert writer.isOpened(), "OpenCV cannot write MJPG here"
    for i in range(frames):
        writer.write(np.full(shape, 10 * i, dtype=np.uint8))
    writer.release()
    return path


def slmsuite_settings(rows: int = 48, cols: int = 64) -> dict:
    return {"resolution": [cols, rows], "pitch_um": [8, 8], "wav_um": 0.532}


@pytest.fixture(params=["mock-fourier", "mock-input", "slmsuite-simulated"])
def slm(request: pytest.FixtureRequest) -> Iterator[SLM]:
    if request.param.startswith("mock"):
        with BenchSpec.from_toml(bench_toml(), source="<contract bench>").open() as bench:
            yield bench.fourier_slm if request.param == "mock-fourier" else bench.input_slm
    else:
        from drivers.slmsuite_slm import SlmsuiteSLM

        with SlmsuiteSLM("fourier_slm", "fourier", settings=slmsuite_settings()) as device:
            yield device


@pytest.fixture(params=["mock", "slmsuite-simulated", "harvesters-viky", "opencv-file"])
def camera(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Camera]:
    kind = request.param
    if kind == "mock":
        with BenchSpec.from_toml(bench_toml(), source="<contract bench>").open() as bench:
            yield bench.camera
    elif kind == "slmsuite-simulated":
        from drivers.slmsuite_camera import SlmsuiteCamera
        from drivers.slmsuite_slm import SlmsuiteSLM

        context = BenchContext(OpticsSpec())
        with SlmsuiteSLM("fourier_slm", "fourier", settings=slmsuite_settings(), context=context), \
                SlmsuiteCamera("camera", settings={"pitch_um": [5, 5]}, exposure_limits_s=[1e-4, 2.0], context=context) as cam:
            yield cam
    elif kind == "harvesters-viky":
        cti = viky_cti()
        if cti is None:
            pytest.skip("genicam>=1.6 with viky.cti is not installed")
        from drivers.harvesters_camera import HarvestersCamera

        with HarvestersCamera("camera", cti=cti, serial=os.environ.get("LABCTL_VIKY_SERIAL", "0"), roi=[0, 0, 128, 100]) as cam:
            yield cam
    else:
        from drivers.opencv_camera import OpenCVCamera

        video = write_test_video(tmp_path / "source.avi")
        with OpenCVCamera("camera", source=str(video), loop=True) as cam:
            yield cam


@pytest.fixture(params=["mock", "serial-sc10", "serial-obis"])
def shutter(request: pytest.FixtureRequest) -> Iterator[Shutter]:
    if request.param == "mock":
        with BenchSpec.from_toml(bench_toml(), source="<contract bench>").open() as bench:
            yield bench.shutter
        return
    from drivers.sim import serial_bus

    serial_bus.unplug_all()
    if request.param == "serial-sc10":
        from drivers.serial_shutter import SerialShutter

        device: Shutter = SerialShutter("shutter", "labsim://sc10")
    else:
        from drivers.obis_laser import ObisLaser

        device = ObisLaser("shutter", "labsim://obis")
    with device:
        yield device
    serial_bus.unplug_all()


@pytest.fixture(params=["mock", "visa-sim"])
def power_meter(request: pytest.FixtureRequest) -> Iterator[PowerMeter]:
    if request.param == "mock":
        with BenchSpec.from_toml(bench_toml() + '\n[power_meter]\ndriver = "mock"\n', source="<contract bench>").open() as bench:
            yield bench.power_meter
    else:
        from drivers.visa_power_meter import VisaPowerMeter

        with VisaPowerMeter("power_meter", "USB0::0x1313::0x8072::P2001234::INSTR", wavelength_m=532e-9, sim=True) as meter:
            yield meter
