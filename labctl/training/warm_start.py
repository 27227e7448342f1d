"""Start an optics-aware student from a trained SCLC student.

Training through the twin costs a full 4f simulation per image, about twenty times an SCLC step, so
an optics-aware student trained from scratch sees few epochs. An SCLC student of the same channel
count and back end has already learnt filters and a back end that reads them; here its collapsed
filter bank is laid out on the bench's tiles and made phase only (one mask per channel group), and
its back end is copied. Training through the twin then only has to repair what the phase-only,
quantised mask and the camera change — the encoding, the crosstalk, the sampling — instead of
learning the filters from random ramps.

The phase is the iterative encoding (:mod:`labctl.masks.iterative`), the data-free one `labctl
export-masks` uses (where a group's output region is the whole window, as for free filters on a
full grid of tiles, that is the filters' own phase): the demo's student read 84.0 % on its twin
after one epoch from it and 81.1 % from the double-phase encoding used before (84.3 and 83.6 after
two; fashion-mini, seed 0, benchmarks/optical_parity.md).
"""

from __future__ import annotations

import numpy as np
import torch

from labctl.masks.filter_bank import fourier_masks
from labctl.masks.iterative import group_regions, iterative_phase
from labctl.models.optics_aware import OpticsAwareConfig, OpticsAwareStudent
from labctl.models.student import SCLCStudent
from labctl.optics.layout import OpticalLayout
from labctl.training.errors import TrainingSettingsError


def optics_aware_from_sclc(sclc: SCLCStudent, layout: OpticalLayout, seed: int = 0) -> OpticsAwareStudent:
    """An optics-aware student for ``layout`` whose phase shows ``sclc``'s filters and whose back end
    is a copy of ``sclc``'s (same sizes, so the same electronic FLOPs)."""
    config = sclc.config
    front = sclc.front
    problems = []
    if config.kind != "sclc" or config.detection != "intensity":
        problems.append(f"it is a {config.kind} student with {config.detection} detection (a camera records intensity)")
    if front.out_size != front.size:
        problems.append(f"its spectral pooling changes the output sampling ({front.size} -> {front.out_size} px)")
    if front.out_channels != layout.channels:
        problems.append(f"it has {front.out_channels} channels and the layout {layout.channels}")
    if config.size != layout.image_size:
        problems.append(f"it reads {config.size}-px images and the layout shows {layout.image_size}-px ones")
    if problems:
        raise TrainingSettingsError("cannot start an optics-aware student from this SCLC student: " + "; ".join(problems))
    student = OpticsAwareStudent(
        OpticsAwareConfig(
            config.task, config.in_channels, config.size, config.num_classes, layout=layout.to_dict(),
            backend_pool=config.backend_pool, hidden=config.hidden, linear_backend=config.linear_backend,
            backend_conv=config.backend_conv, backend_conv_layers=config.backend_conv_layers,
        ),
        seed=seed,
    )
    with torch.no_grad():
        bank = front.collapse()
    regions = group_regions(layout, front.kernel_extent if front.kernel_support else 0)
    phases = [torch.from_numpy(iterative_phase(mask, region, np.angle(mask))[0]).float()
              for mask, region in zip(fourier_masks(bank, layout), regions)]
    with torch.no_grad():
        student.set_phase(phases[0] if len(phases) == 1 else torch.stack(phases))
    student.back.load_state_dict(sclc.back.state_dict())
    return student
