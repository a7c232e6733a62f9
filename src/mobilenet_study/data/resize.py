"""How the study brings CIFAR-10's 32×32 images to a smaller input side — a run's ρ, the theory
stages' input size: one resampling, defined once."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def resize(images: torch.Tensor, side: int) -> torch.Tensor:
    """Float NCHW ``images`` resampled to ``side`` × ``side`` (antialiased bilinear, so that
    shrinking averages the pixels it merges instead of skipping them); unchanged if already so."""
    if images.shape[-2:] == (side, side):
        return images
    return F.interpolate(images, size=side, mode="bilinear", antialias=True, align_corners=False)
