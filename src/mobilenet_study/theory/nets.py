"""The theory stages' networks: a stack of 3×3 conv layers in three stages.

``depth`` counts the weighted layers as the papers do: ``depth − 1`` convs and the linear
classifier. A stem conv, then the other convs split evenly over three stages of ``widths``
channels; the first conv of stages 2 and 3 halves the map (stride 2). Each conv is followed by
BatchNorm (optional) and ReLU; global average pooling and the linear layer classify.

- Q1a/b's plain ReLU network: ``batch_norm=False, shortcuts=False``.
- He et al. 2016 §4.2 (CIFAR-10): depth 6n + 2 (6n + 1 convs) with widths 16/32/64,
  BatchNorm, He initialisation; plain-(6n+2) has no shortcuts, ResNet-(6n+2) adds one around
  every pair of convs after the stem (identity; where the width doubles, the paper's option
  A: the input subsampled by 2 and zero-padded to the new width, so no parameter is added).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

INITS = ("zero", "constant", "xavier", "he")


def stage_layout(depth: int, stages: int = 3) -> list[int]:
    """Conv layers per stage: ``depth`` split as evenly as possible, earlier stages first."""
    return [depth // stages + (1 if s < depth % stages else 0) for s in range(stages)]


class ConvUnit(nn.Module):
    """3×3 conv (no bias) → BatchNorm (optional) → ReLU."""

    def __init__(self, cin: int, cout: int, stride: int, batch_norm: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout) if batch_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class ResidualPair(nn.Module):
    """Two conv units, the second's ReLU after the shortcut is added (He et al. 2016, Fig. 2)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.first = ConvUnit(cin, cout, stride, batch_norm=True)
        self.conv = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.stride, self.pad = stride, cout - cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x[:, :, :: self.stride, :: self.stride] if self.stride > 1 else x
        if self.pad:
            shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, self.pad))
        return F.relu(self.bn(self.conv(self.first(x))) + shortcut)


class DeepCNN(nn.Module):
    """``features`` (conv units, or residual pairs after the stem) → pool → ``classifier``."""

    def __init__(
        self,
        depth: int,
        widths: tuple[int, int, int],
        *,
        batch_norm: bool,
        shortcuts: bool = False,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        if shortcuts and not batch_norm:
            raise ValueError("the residual networks of He et al. 2016 have BatchNorm")
        if depth < 4:
            raise ValueError(f"depth counts a stem, 3 stages and a classifier: >= 4, got {depth}")
        if shortcuts and (depth - 2) % 6:
            raise ValueError(f"a CIFAR ResNet has depth 6n + 2, got {depth}")
        units: list[nn.Module] = [ConvUnit(3, widths[0], 1, batch_norm)]
        cin = widths[0]
        if shortcuts:
            pairs = (depth - 2) // 6
            for s, width in enumerate(widths):
                for i in range(pairs):
                    units.append(ResidualPair(cin, width, 2 if s and i == 0 else 1))
                    cin = width
        else:
            for s, (width, count) in enumerate(zip(widths, stage_layout(depth - 2), strict=True)):
                for i in range(count):
                    units.append(ConvUnit(cin, width, 2 if s and i == 0 else 1, batch_norm))
                    cin = width
        self.features = nn.Sequential(*units)
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))

    def convs(self) -> list[nn.Conv2d]:
        """Every conv, input to output."""
        return [m for m in self.features.modules() if isinstance(m, nn.Conv2d)]


def initialise(model: nn.Module, scheme: str, generator: torch.Generator | None = None) -> None:
    """Set every conv and linear weight (biases to zero) by ``scheme``:

    - ``zero``: all zeros;
    - ``constant``: every entry of a layer 1 / fan_in (each filter averages its window, so the
      signal neither dies nor explodes: symmetric, but alive);
    - ``xavier``: Glorot normal, Var = 2 / (fan_in + fan_out);
    - ``he``: He (Kaiming) normal, Var = 2 / fan_in (fan_in mode: the forward signal's scale
      is kept).
    BatchNorm layers start as the identity.
    """
    if scheme not in INITS:
        raise ValueError(f"unknown initialisation {scheme!r}; known: {', '.join(INITS)}")
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        if not isinstance(module, (nn.Conv2d, nn.Linear)):
            continue
        weight = module.weight
        fan_in = weight[0].numel()
        fan_out = weight.shape[0] * weight[0, 0].numel()
        with torch.no_grad():
            if scheme == "zero":
                weight.zero_()
            elif scheme == "constant":
                weight.fill_(1.0 / fan_in)
            else:
                std = math.sqrt(2.0 / (fan_in + fan_out) if scheme == "xavier" else 2.0 / fan_in)
                weight.normal_(0.0, std, generator=generator)
            if module.bias is not None:
                module.bias.zero_()


def build(
    depth: int,
    widths: tuple[int, int, int],
    *,
    init: str = "he",
    batch_norm: bool,
    shortcuts: bool = False,
    seed: int = 0,
) -> DeepCNN:
    """A :class:`DeepCNN`, initialised by ``init`` with weights drawn from ``seed``."""
    model = DeepCNN(depth, widths, batch_norm=batch_norm, shortcuts=shortcuts)
    initialise(model, init, torch.Generator().manual_seed(seed))
    return model
