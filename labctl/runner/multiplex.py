"""Channels multiplexed over several masks: when a student's channels do not fit one camera frame,
each channel group is its own Fourier mask and camera frame (see :class:`OpticalLayout`). A batch of
inputs is shown once per group, under that group's mask; the frames of one input are read together.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from calibration.acquisition import Acquirer
from drivers.camera import FrameBatch


def capture_groups(acquirer: Acquirer, group_gray: Sequence[np.ndarray], amplitudes: np.ndarray, first_index: int = -1) -> FrameBatch:
    """Frames of ``amplitudes`` under each mask of ``group_gray`` (one (rows, cols) gray array per group).

    One mask: the acquirer's frames as they come, ``data`` (B, H, W). Several: ``data`` is
    (B, groups, H, W), and frame numbers and timestamps are those of the first group's frames (the
    record's per-input metadata); each mask is shown once per batch, so a batch costs one mask
    change per group, not per input."""
    if len(group_gray) == 1:
        acquirer.set_mask(group_gray[0])
        return acquirer.capture(amplitudes, first_index)
    batches = []
    for gray in group_gray:
        acquirer.set_mask(gray)
        batches.append(acquirer.capture(amplitudes, first_index))
    first = batches[0]
    return FrameBatch(
        data=np.stack([b.data for b in batches], axis=1),
        frame_numbers=first.frame_numbers,
        timestamps_s=first.timestamps_s,
        exposure_s=first.exposure_s,
        gain=first.gain,
    )
