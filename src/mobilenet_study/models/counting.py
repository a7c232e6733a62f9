"""Counting a built model: trainable parameters and measured mult-adds (MACs) per image.

MACs come from PyTorch's FLOP counter (MACs = FLOPs / 2); the analytic counts from the papers'
formulas are in :mod:`mobilenet_study.cost`, which checks that the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class Cost:
    """MACs (mult-adds) per image and trainable parameters."""

    macs: int
    params: int


def count_params(model: nn.Module) -> int:
    """Trainable parameters of a module."""
    return sum(t.numel() for t in model.parameters() if t.requires_grad)


def measured_macs(model: nn.Module, input_size: int, in_channels: int = 3) -> int:
    """MACs of one forward pass on one image, from PyTorch's FLOP counter (MACs = FLOPs / 2).

    FlopCounterMode counts matrix multiplications and convolutions only, the same layers the
    analytic count covers. The model runs in eval mode on a zero image; its mode is restored.
    """
    was_training = model.training
    device = next(model.parameters()).device
    x = torch.zeros(1, in_channels, input_size, input_size, device=device)
    try:
        model.eval()
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    flops = counter.get_total_flops()
    return int(flops) // 2


def measured_cost(model: nn.Module, input_size: int) -> Cost:
    return Cost(macs=measured_macs(model, input_size), params=count_params(model))
