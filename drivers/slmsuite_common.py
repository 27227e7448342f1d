"""What the slmsuite SLM and camera adapters share: which slmsuite classes a bench file may name,
how they are imported (lazily: slmsuite loads OpenCV and matplotlib at import), and how slmsuite's
and the vendor SDKs' exceptions become ours.

slmsuite has no exception hierarchy of its own: vendor SDKs raise RuntimeError, OSError (a DLL that
will not load), ImportError (a vendor Python package that is not installed), ValueError (a board
number out of range) or their own classes. :func:`vendor_errors` maps them by kind, naming the
device, the slmsuite class and its settings (the "address"), and the next thing to try.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from drivers.errors import DeviceDisconnected, DeviceError, DeviceNotFound, DeviceTimeout, InvalidSetting


@dataclass(frozen=True)
class SlmsuiteModel:
    """One slmsuite hardware class: where it lives and whose hardware it drives."""

    target: str  # "module:Class" inside slmsuite.hardware
    vendor: str


#: slmsuite SLM classes a bench file may name with ``model = "..."``.
SLM_MODELS: dict[str, SlmsuiteModel] = {
    "simulated": SlmsuiteModel("slmsuite.hardware.slms.simulated:SimulatedSLM", "slmsuite"),
    "screenmirrored": SlmsuiteModel("slmsuite.hardware.slms.screenmirrored:ScreenMirrored", "display"),
    "meadowlark": SlmsuiteModel("slmsuite.hardware.slms.meadowlark:Meadowlark", "Meadowlark Optics"),
    "holoeye": SlmsuiteModel("slmsuite.hardware.slms.holoeye:Holoeye", "HOLOEYE"),
    "santec": SlmsuiteModel("slmsuite.hardware.slms.santec:Santec", "Santec"),
    "hamamatsu": SlmsuiteModel("slmsuite.hardware.slms.hamamatsu:Hamamatsu", "Hamamatsu"),
    "thorlabs": SlmsuiteModel("slmsuite.hardware.slms.thorlabs:ThorSLM", "Thorlabs"),
}

#: slmsuite camera classes a bench file may name with ``model = "..."``.
CAMERA_MODELS: dict[str, SlmsuiteModel] = {
    "simulated": SlmsuiteModel("slmsuite.hardware.cameras.simulated:SimulatedCamera", "slmsuite"),
    "alliedvision": SlmsuiteModel("slmsuite.hardware.cameras.alliedvision:AlliedVision", "Allied Vision"),
    "basler": SlmsuiteModel("slmsuite.hardware.cameras.basler:Basler", "Basler"),
    "flir": SlmsuiteModel("slmsuite.hardware.cameras.flir:FLIR", "Teledyne FLIR"),
    "imagingsource": SlmsuiteModel("slmsuite.hardware.cameras.imagingsource:ImagingSource", "The Imaging Source"),
    "thorlabs": SlmsuiteModel("slmsuite.hardware.cameras.thorlabs:ThorCam", "Thorlabs"),
    "xenics": SlmsuiteModel("slmsuite.hardware.cameras.xenics:Cheetah640", "Xenics"),
    "mindvision": SlmsuiteModel("slmsuite.hardware.cameras.mindvision:MindVision", "MindVision"),
    "instrumental": SlmsuiteModel("slmsuite.hardware.cameras.instrumental:Instrumental", "Instrumental"),
    "mmcore": SlmsuiteModel("slmsuite.hardware.cameras.mmcore:MMCore", "Micro-Manager"),
    "pylablib": SlmsuiteModel("slmsuite.hardware.cameras.pylablib:PyLabLib", "pylablib"),
    "webcam": SlmsuiteModel("slmsuite.hardware.cameras.webcam:Webcam", "OpenCV"),
}


def check_model(models: dict[str, SlmsuiteModel], model: str, what: str) -> SlmsuiteModel:
    """The table entry for ``model``; ValueError (a bench-file error) naming the known ones."""
    try:
        return models[model]
    except KeyError:
        raise ValueError(f"unknown slmsuite {what} model {model!r}; known: {', '.join(sorted(models))}") from None


def address(model: str, settings: dict[str, Any]) -> str:
    """How an operator finds the device again: slmsuite class and its settings."""
    args = ", ".join(f"{k}={v!r}" for k, v in settings.items())
    return f"slmsuite {model}({args})"


def load_class(device: str, model: str, entry: SlmsuiteModel) -> type:
    """Import the slmsuite class (and with it slmsuite and the vendor's Python package)."""
    module, attr = entry.target.split(":")
    with vendor_errors(device, f"slmsuite {model}", "loading the driver"):
        return getattr(importlib.import_module(module), attr)


@contextlib.contextmanager
def vendor_errors(device: str, where: str, action: str) -> Iterator[None]:
    """Re-raise anything slmsuite or a vendor SDK throws during ``action`` as one of our errors."""
    try:
        yield
    except DeviceError:
        raise
    except ImportError as exc:
        raise DeviceNotFound(
            device, f"{action} on {where}: a vendor Python package is missing ({exc}); install the vendor SDK "
            "and its Python bindings on this PC"
        ) from exc
    except AttributeError as exc:
        if "windll" in str(exc):
            raise DeviceNotFound(
                device, f"{action} on {where}: this vendor SDK runs only on Windows; run labctl on the bench PC"
            ) from exc
        raise DeviceError(device, f"{action} on {where} failed: {type(exc).__name__}: {exc}") from exc
    except TimeoutError as exc:
        raise DeviceTimeout(
            device, f"{action} on {where} timed out ({exc}); check that the device is powered and triggered"
        ) from exc
    except ConnectionError as exc:
        raise DeviceDisconnected(
            device, f"{action} on {where}: link lost ({exc}); check the cable, then close and reopen"
        ) from exc
    except OSError as exc:
        raise DeviceNotFound(
            device, f"{action} on {where}: the vendor library or device could not be opened ({exc}); check the "
            "SDK installation path and that no other program holds the device"
        ) from exc
    except (ValueError, TypeError) as exc:
        raise InvalidSetting(
            device, f"{action} on {where}: rejected ({exc}); check the settings in the bench file"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - vendor SDKs raise anything; keep the cause chained
        if "timeout" in type(exc).__name__.lower():  # e.g. VmbTimeout, SpinnakerTimeoutException
            raise DeviceTimeout(
                device, f"{action} on {where} timed out ({type(exc).__name__}: {exc}); check that the device is "
                "powered and triggered"
            ) from exc
        raise DeviceError(device, f"{action} on {where} failed: {type(exc).__name__}: {exc}") from exc
