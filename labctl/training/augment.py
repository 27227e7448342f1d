"""Random translations, applied identically to images and (for segmentation) masks.

The same augmented batch goes through the teacher during KD, so the student matches the teacher on
inputs it never saw labelled ("function matching", Beyer et al., CVPR 2022): this is much of what
makes distillation pay off for a small, linear-front-end student.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_shift(images: torch.Tensor, targets: torch.Tensor, max_shift: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Shift each image by up to ``max_shift`` px in x and y (zero fill); masks move with their image."""
    if max_shift <= 0:
        return images, targets
    b, _, h, w = images.shape
    s = max_shift
    dy = torch.randint(0, 2 * s + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * s + 1, (b,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None, :])  # (B, H) rows of the padded image
    cols = (dx[:, None] + torch.arange(w)[None, :])
    padded = F.pad(images, (s, s, s, s))
    bi = torch.arange(b)[:, None, None]
    shifted = padded.permute(0, 2, 3, 1)[bi, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if targets.ndim == 3:
        padded_t = F.pad(targets, (s, s, s, s))
        targets = padded_t[bi, rows[:, :, None], cols[:, None, :]]
    return shifted.contiguous(), targets
