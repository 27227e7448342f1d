"""The optics-aware student: a phase-only, quantised Fourier mask through the shared 4f model,
channel tiles read from the simulated camera frame."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from drivers.bench import BenchSpec
from labctl.models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from labctl.models.bench_layout import layout_for_bench
from labctl.optics.layout import OpticalLayout
from labctl.optics.phase_parameter import RESTORE_MARGIN, logits_from_phase
from labctl.models.optics_aware import OpticsAwareConfig, OpticsAwareStudent, initial_phase, quantise_phase
from tests.conftest import bench_toml


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def layout() -> OpticalLayout:
    return layout_for_bench(BenchSpec.from_toml(bench_toml(ideal=True, noise=False)), 12, 4)


def _student(layout: OpticalLayout) -> OpticsAwareStudent:
    return OpticsAwareStudent(OpticsAwareConfig("classification", 1, 12, 10, layout=layout.to_dict(), backend_pool=4, hidden=16))


def test_quantisation_has_the_slm_levels_and_a_straight_through_gradient() -> None:
    phase = torch.linspace(-7, 14, 5000, requires_grad=True)
    q = quantise_phase(phase, 4)
    assert 0 <= float(q.detach().min()) and float(q.detach().max()) < 2 * math.pi
    assert torch.unique(q.detach()).numel() == 16
    assert torch.allclose(q.detach() / (2 * math.pi / 16), torch.round(q.detach() / (2 * math.pi / 16)), atol=1e-4)
    q.sum().backward()
    assert torch.allclose(phase.grad, torch.ones_like(phase))


def test_phase_mask_is_the_fourier_slm_and_trains(layout: OpticalLayout) -> None:
    student = _student(layout)
    mask = student.phase_mask()
    assert mask.shape == (layout.fourier_rows, layout.fourier_cols)
    assert torch.unique(mask.detach()).numel() <= 2**layout.fourier_bit_depth
    x = torch.rand(3, 1, 12, 12)
    assert student.detected(x).shape == (3, 4, 12, 12)
    student(x).sum().backward()
    assert student.phase.value.grad is not None and float(student.phase.value.grad.abs().sum()) > 0


def test_a_steering_ramp_images_the_input_into_its_tile(layout: OpticalLayout) -> None:
    """Mask = the ramp for channel c alone: channel c reads back the input intensity (amplitude²)."""
    one = OpticalLayout.from_dict({**layout.to_dict(), "tiles": [list(layout.tiles[2])], "channels": 1})
    student = OpticsAwareStudent(OpticsAwareConfig("classification", 1, 12, 10, layout=one.to_dict(), backend_pool=4, hidden=16))
    student.set_phase(initial_phase(one, torch.Generator().manual_seed(0), jitter_rad=0.0))
    x = torch.zeros(1, 1, 12, 12)
    x[0, 0, 2:10, 5:7] = 1.0
    x[0, 0, 2:4, 3:9] = 0.6
    detected = student.detected(x)[0, 0]
    corr = torch.corrcoef(torch.stack([detected.flatten(), (x[0, 0] ** 2).flatten()]))[0, 1]
    assert corr > 0.9


def test_checkpoint_round_trip_keeps_layout_and_mask(layout: OpticalLayout, tmp_path) -> None:
    student = _student(layout).eval()
    save_checkpoint(tmp_path, student, {"data": "digits"})
    loaded = load_checkpoint(tmp_path)
    assert loaded.kind == "optics_aware" and loaded.model.layout == layout
    assert torch.equal(loaded.model.phase_mask(), student.phase_mask())
    x = torch.rand(2, 1, 12, 12)
    assert torch.allclose(loaded.model(x), student(x))


@pytest.mark.parametrize("fringing_px", [0.0, 0.5])
@pytest.mark.parametrize("version", [1, 2])
def test_an_older_checkpoint_loads_as_it_was(layout: OpticalLayout, tmp_path, version: int, fringing_px: float) -> None:
    """Version 1 stored the phase in radians (``phase``), version 2 as logits (``phase_logits``)."""
    panel = dataclasses.replace(layout, fringing_sigma_px=fringing_px)
    student = _student(panel).eval()
    assert student.phase.bounded == (fringing_px > 0)  # bounded only where the panel fringes
    save_checkpoint(tmp_path, student, {"data": "digits"})
    meta = json.loads((tmp_path / "model.json").read_text())
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    del state["phase.value"]
    with torch.no_grad():
        radians = torch.remainder(student.phase(), 2 * math.pi)
    state |= {"phase": radians} if version == 1 else {"phase_logits": logits_from_phase(radians, RESTORE_MARGIN)}
    torch.save(state, tmp_path / "model.pt")
    (tmp_path / "model.json").write_text(json.dumps(meta | {"version": version}))
    loaded = load_checkpoint(tmp_path).model
    step = 2 * math.pi / 2**layout.fourier_bit_depth
    apart = torch.remainder(loaded.phase_mask() - student.phase_mask() + math.pi, 2 * math.pi) - math.pi  # on the circle
    assert float(apart.abs().max()) <= step + 1e-6
    (tmp_path / "model.json").write_text(json.dumps(meta | {"version": 9}))
    with pytest.raises(CheckpointError, match="format version 9"):
        load_checkpoint(tmp_path)


def test_the_twin_shows_the_mask_through_the_calibrated_panel(layout: OpticalLayout, tmp_path) -> None:
    """The layout carries the panel's calibrated fringing and fill factor; the student trains through
    them from the first step, and a reloaded student keeps them."""
    import dataclasses

    from labctl.optics.twin import TwinAssumptions

    panel = dataclasses.replace(layout, fringing_sigma_px=0.6, fill_factor=0.9)
    student, ideal = _student(panel), _student(layout)
    assert student.twin.assumptions == TwinAssumptions(0.6, 0.9) and ideal.twin.assumptions == TwinAssumptions()
    ideal.load_state_dict(student.state_dict(), strict=False)
    x = torch.rand(3, 1, 12, 12)
    with torch.no_grad():
        assert not torch.allclose(student.frames(x), ideal.frames(x), rtol=0.05)  # the panel matters to the frames
    save_checkpoint(tmp_path, student, {"data": "synthetic"})
    assert load_checkpoint(tmp_path).model.twin.assumptions == TwinAssumptions(0.6, 0.9)
