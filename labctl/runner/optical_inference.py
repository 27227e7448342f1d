"""From camera frames to predictions: correct, read the channel tiles, normalise, run the back end.

The same readout (:mod:`labctl.optics.readout`) turns the digital twin's frames into the student's
``detected`` channels, so a frame from the bench goes through exactly what the back end was trained
on; only the affine differs (the calibrated registration instead of the nominal geometry).

The camera's DN scale is not the twin's power scale (laser power, exposure, losses), so a per-channel
gain and offset is fitted by least squares on a few *training* inputs (never the evaluated ones)
before a run: :func:`labctl.optics.channel_scale.fit_channel_scale`.
"""

from __future__ import annotations

import numpy as np
import torch

from labctl.optics.channel_scale import ChannelScale
from labctl.optics.layout import OpticalLayout
from labctl.optics.readout import DEFAULT_OVERSAMPLE, ReadoutMatrix, channel_points
from labctl.records.run_record import Column


class OpticalInference:
    """A :class:`labctl.runner.loop.FrameProcessor`: frames (B, H, W) in DN → predictions."""

    def __init__(
        self,
        back_end: torch.nn.Module,
        layout: OpticalLayout,
        affine: np.ndarray,
        task: str,
        num_classes: int,
        correct=None,
        scale: ChannelScale | None = None,
        oversample: int = DEFAULT_OVERSAMPLE,
        warp=None,
    ) -> None:
        self.back_end = back_end.eval()
        self.layout = layout
        self._read = ReadoutMatrix(channel_points(layout, affine, oversample, warp), (layout.camera_rows, layout.camera_cols),
                                   oversample)
        self.task = task
        self.num_classes = num_classes
        self.correct = correct
        self.scale = scale
        n = layout.image_size
        if task == "classification":
            self.columns = [Column("prediction", (), "i8"), Column("logits", (num_classes,), "f4")]
        else:
            self.columns = [Column("prediction", (n, n), "u1")]

    @property
    def pixels_read(self) -> np.ndarray:
        """Bool (H, W): the camera pixels the channel tiles are read from (where the exposure matters)."""
        return self._read.pixels_read

    def readout(self, frames: np.ndarray) -> torch.Tensor:
        """Corrected frames read at the channel points: (B, C, n, n), in DN (before scaling).

        ``frames``: (B, H, W), or (B, groups, H, W) for multiplexed channels (one frame per channel
        group, each read at the same tiles; the groups' channels follow one another)."""
        frames = np.asarray(frames, dtype=np.float32)
        if self.correct is not None:
            frames = self.correct(frames)
        if frames.ndim == 3:
            return self._read(frames)
        b, groups = frames.shape[:2]
        read = self._read(frames.reshape(b * groups, *frames.shape[2:]))
        return read.reshape(b, groups * read.shape[1], *read.shape[2:])[:, : self.layout.channels]

    def __call__(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        readout = self.readout(frames)
        detected = self.scale.apply(readout) if self.scale is not None else readout
        with torch.no_grad():
            out = self.back_end(detected)
        if self.task == "classification":
            return {"prediction": out.argmax(1).numpy(), "logits": out.numpy().astype(np.float32)}
        return {"prediction": out.argmax(1).numpy().astype(np.uint8)}
