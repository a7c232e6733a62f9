"""What a model costs, counted two ways: analytic, by the papers' formulas over the models'
layer specs, and measured, by counting what the built module does (trainable parameters, and
MACs from PyTorch's FLOP counter, MACs = FLOPs / 2). The cost stage checks that the two agree.
Defaults are the study's: CIFAR-10's ten classes, the CIFAR variant, 32-pixel inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from mobilenet_study.models import LayerSpec, layer_specs


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


# --- Analytic cost: the papers' formulas over the models' layer specs -------------------------


def layer_cost(layer: LayerSpec) -> Cost:
    """One layer's MACs and parameters by the MobileNet paper's formulas (Section 3.1).

    With kernel side D_K, M input and N output channels and output feature-map side D_F:
    a standard conv costs D_K²·M·N·D_F² (a pointwise conv is the case D_K = 1), a depthwise
    conv D_K²·M·D_F², a linear layer M·N. α is already in M and N, ρ in D_F.
    """
    k2, m, n, f2 = layer.kernel**2, layer.in_channels, layer.out_channels, layer.out_size**2
    if layer.kind in ("standard", "pointwise"):
        weights = k2 * m * n
        macs = weights * f2
    elif layer.kind == "depthwise":
        weights = k2 * m
        macs = weights * f2
    elif layer.kind == "linear":
        weights = m * n
        return Cost(macs=weights, params=weights + n)  # + bias
    else:
        raise ValueError(f"unknown layer kind {layer.kind!r}")
    # Convs have no bias (BatchNorm's shift replaces it); BN adds a scale and a shift per
    # output channel.
    return Cost(macs=macs, params=weights + (2 * n if layer.batch_norm else 0))


def analytic_cost(
    name: str,
    width: float = 1.0,
    input_size: int = 32,
    num_classes: int = 10,
    variant: str = "cifar",
) -> Cost:
    """The model's MACs per image and parameters, summed over :func:`layer_cost`."""
    costs = [
        layer_cost(layer) for layer in layer_specs(name, width, num_classes, variant, input_size)
    ]
    return Cost(sum(c.macs for c in costs), sum(c.params for c in costs))


def analytic_layers(
    name: str,
    width: float = 1.0,
    input_size: int = 32,
    num_classes: int = 10,
    variant: str = "cifar",
) -> pd.DataFrame:
    """One row per layer: its spec and its MACs and parameters (for inspection and plots)."""
    rows = []
    for layer in layer_specs(name, width, num_classes, variant, input_size):
        cost = layer_cost(layer)
        rows.append({**layer.__dict__, "macs": cost.macs, "params": cost.params})
    return pd.DataFrame(rows)
