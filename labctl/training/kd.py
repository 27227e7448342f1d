"""Knowledge-distillation losses (Hinton et al. 2015), as used by Xiang et al., Appl. Opt. 61:2173 (2022):

``α·T²·KL(softmax(z_t/T) ‖ softmax(z_s/T)) + (1−α)·CE(z_s, y)``

The T² factor keeps the soft-target gradients on the scale of the hard-label ones. For
segmentation the same loss is applied at every pixel (logits (B, K, H, W)) and averaged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from labctl.training.errors import TrainingSettingsError


def _check(T: float, alpha: float) -> None:
    if T <= 0:
        raise TrainingSettingsError(f"KD temperature must be > 0; got {T}")
    if not 0.0 <= alpha <= 1.0:
        raise TrainingSettingsError(f"KD weight alpha must be within [0, 1]; got {alpha}")


def soft_target_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float) -> torch.Tensor:
    """T²·KL(teacher ‖ student) at temperature T, over dim 1, averaged over everything else."""
    log_p_s = F.log_softmax(student_logits / T, dim=1)
    log_p_t = F.log_softmax(teacher_logits.detach() / T, dim=1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=1)
    return kl.mean() * T * T


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, T: float, alpha: float) -> torch.Tensor:
    """Hinton KD loss for classification ((B, K) logits, (B,) labels) or pixel-wise segmentation
    ((B, K, H, W) logits, (B, H, W) masks)."""
    _check(T, alpha)
    if student_logits.shape != teacher_logits.shape:
        raise TrainingSettingsError(f"student logits {tuple(student_logits.shape)} and teacher logits {tuple(teacher_logits.shape)} differ")
    hard = F.cross_entropy(student_logits, labels) if alpha < 1 else student_logits.new_zeros(())
    soft = soft_target_loss(student_logits, teacher_logits, T) if alpha > 0 else student_logits.new_zeros(())
    return alpha * soft + (1 - alpha) * hard


def pixel_kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, masks: torch.Tensor, T: float, alpha: float) -> torch.Tensor:
    """Pixel-wise KD for segmentation: :func:`kd_loss` on (B, K, H, W) logits and (B, H, W) masks."""
    if student_logits.ndim != 4 or masks.ndim != 3:
        raise TrainingSettingsError(f"pixel-wise KD needs (B, K, H, W) logits and (B, H, W) masks; got {tuple(student_logits.shape)}, {tuple(masks.shape)}")
    return kd_loss(student_logits, teacher_logits, masks, T, alpha)
