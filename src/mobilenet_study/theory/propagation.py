"""Signal propagation at initialisation (Q1a, Q1b): how the scale of the activations and of the
gradients changes from layer to layer of a deep plain ReLU network without BatchNorm.

:func:`measure` runs one real batch forward and backward and reads, per conv layer, the
standard deviation and root mean square of its ReLU output, the norm of the loss's gradient
with respect to that output, and the norm of the layer's weight gradient.

:func:`expected_rms` is the closed-form expectation of the forward scale, over the random
weights, for the same layers and the same input batch. For a conv with zero-mean weights of
variance v, independent of its input, the pre-activation z at pixel p has
E[z²] = v · Σ_{channels, window of p} E[x²], is symmetric, so ReLU keeps half of it:
E[relu(z)²] = E[z²] / 2. Tracking the map M(p) = Σ_channels E[x(p)²] layer by layer is then a
convolution of M with a 3×3 window of ones (with the layer's stride and zero padding), times
C_out · v / 2; the borders, where the window meets the padding, are counted exactly. Far from
borders and with equal fan-in and fan-out, Xavier's v = 1 / fan_in gives the textbook factor
1/2 per layer in E[x²] (1/√2 in scale), He's v = 2 / fan_in gives 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from mobilenet_study.theory.nets import DeepCNN


def weight_variance(module: nn.Conv2d | nn.Linear, scheme: str) -> float:
    """The variance the initialisation ``scheme`` draws ``module``'s weights with (0 for zero
    and constant: no randomness)."""
    weight = module.weight
    fan_in = weight[0].numel()
    fan_out = weight.shape[0] * weight[0, 0].numel()
    if scheme == "xavier":
        return 2.0 / (fan_in + fan_out)
    if scheme == "he":
        return 2.0 / fan_in
    return 0.0


def textbook_ratio(scheme: str, layers: int) -> float:
    """The textbook's last-over-first activation scale after ``layers`` conv layers: Xavier
    halves E[x²] per ReLU layer (2^(−(layers−1)/2) in scale), He keeps it (1), zero kills it."""
    return {"xavier": 2.0 ** (-(layers - 1) / 2), "he": 1.0}.get(scheme, 0.0)


@dataclass(frozen=True)
class Propagation:
    """One initialisation's measurements, per conv layer (input to output)."""

    scheme: str
    layers: pd.DataFrame  # layer, activation_std, activation_rms, expected_rms, grad norms
    classifier_weight_grad_norm: float
    classifier_bias_grad_norm: float

    def ratio(self, column: str) -> float:
        """Last layer over first for ``column``."""
        values = self.layers[column].to_numpy()
        return float(values[-1] / values[0]) if values[0] else math.nan


def measure(model: DeepCNN, images: torch.Tensor, labels: torch.Tensor, scheme: str) -> Propagation:
    """Forward and backward one batch through ``model`` (initialised by ``scheme``)."""
    units = list(model.features)
    outputs: list[torch.Tensor] = []

    def keep(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        output.retain_grad()
        outputs.append(output)

    handles = [unit.register_forward_hook(keep) for unit in units]
    try:
        model.train()
        model.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
    finally:
        for handle in handles:
            handle.remove()
    convs = model.convs()
    rows = []
    for i, (conv, out) in enumerate(zip(convs, outputs, strict=True), start=1):
        grad = out.grad if out.grad is not None else torch.zeros_like(out)
        rows.append(
            {
                "layer": i,
                "activation_std": float(out.detach().std()),
                "activation_rms": float(out.detach().pow(2).mean().sqrt()),
                "output_grad_norm": float(grad.norm()),
                "weight_grad_norm": float(conv.weight.grad.norm()),
            }
        )
    table = pd.DataFrame(rows)
    table["expected_rms"] = expected_rms(model, images, scheme)
    table.insert(0, "init", scheme)
    return Propagation(
        scheme=scheme,
        layers=table,
        classifier_weight_grad_norm=float(model.classifier.weight.grad.norm()),
        classifier_bias_grad_norm=float(model.classifier.bias.grad.norm()),
    )


def expected_rms(model: DeepCNN, images: torch.Tensor, scheme: str) -> np.ndarray:
    """The closed-form E[x²]^(1/2) of each conv layer's ReLU output (see the module's text)."""
    moments = images.detach().double().pow(2).sum(dim=1).mean(dim=0)[None, None]  # (1,1,H,W)
    window = torch.ones(1, 1, 3, 3, dtype=torch.float64)
    expected = []
    for conv in model.convs():
        variance = weight_variance(conv, scheme)
        summed = F.conv2d(moments, window, stride=conv.stride, padding=1)
        moments = summed * conv.out_channels * variance / 2
        expected.append(math.sqrt(float(moments.mean()) / conv.out_channels))
    return np.array(expected)
