"""Put a simulated bench's physics on a torch device: ``--device`` of the commands that open the
bench becomes the mock camera's ``device`` argument (the camera renders every frame of the table).
Real devices are left as they are, and so is the bench file: the choice is the run's, not the bench's."""

from __future__ import annotations

import dataclasses

import torch

from drivers.bench import BenchSpec

SIMULATED_DRIVER = "mock"


def simulated_on(spec: BenchSpec, device: torch.device) -> BenchSpec:
    """``spec`` with its simulated camera (if it has one) computing on ``device``."""
    camera = spec.devices.get("camera")
    if camera is None or camera.driver != SIMULATED_DRIVER:
        return spec
    devices = dict(spec.devices)
    devices["camera"] = dataclasses.replace(camera, args={**camera.args, "device": str(device)})
    return dataclasses.replace(spec, devices=devices)
