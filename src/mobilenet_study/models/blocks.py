"""The modules: one class per kind of block, and the network that stacks them.

Every model is ``features`` (an nn.Sequential of blocks) → global average pooling →
``classifier`` (dropout, then one nn.Linear). Grad-CAM hooks ``features[-1]`` and relies on
exactly this "last feature block → GAP → linear" shape, so every model keeps it.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn

from mobilenet_study.models.conv import Conv2d
from mobilenet_study.models.spec import Architecture, BlockSpec, ConvSpec

_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "relu6": nn.ReLU6}


class ConvBNAct(nn.Sequential):
    """conv (no bias: BatchNorm's shift replaces it) → BatchNorm → activation (if any).

    Also the block class of a ``conv`` block: the stem, the baseline's 3×3 convs, V2's head.
    """

    def __init__(self, spec: ConvSpec) -> None:
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            {
                "conv": Conv2d(
                    spec.in_channels,
                    spec.out_channels,
                    spec.kernel,
                    stride=spec.stride,
                    padding=spec.padding,
                    groups=spec.groups,
                    bias=False,
                ),
                "bn": nn.BatchNorm2d(spec.out_channels),
            }
        )
        if spec.activation is not None:
            layers["act"] = _ACTIVATIONS[spec.activation](inplace=True)
        super().__init__(layers)
        self.spec = spec
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He (Kaiming) normal init in fan_out mode, with the fan_out of a grouped conv.

        fan_out mode keeps the gradient variance steady through the backward pass (He et al.
        2015). fan_out is K²·C_out/groups, the outputs each input feeds: PyTorch's own
        fan_out ignores groups, which would make depthwise kernels √C too small. The gain is
        √2 for a conv followed by ReLU/ReLU6 (the rectifier halves the variance) and 1 for a
        linear bottleneck, which has no rectifier. BatchNorm starts as the identity map.
        """
        conv = self.conv
        fan_out = conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels // conv.groups
        gain = math.sqrt(2.0) if self.spec.activation is not None else 1.0
        nn.init.normal_(conv.weight, mean=0.0, std=gain / math.sqrt(fan_out))
        nn.init.ones_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)


class DepthwiseSeparable(nn.Module):
    """MobileNet V1's block: 3×3 depthwise conv → BN → ReLU, then 1×1 pointwise → BN → ReLU."""

    def __init__(self, spec: BlockSpec) -> None:
        super().__init__()
        roles = [conv.role for conv in spec.convs]
        if roles != ["dw", "pw"]:
            raise ValueError(f"a depthwise-separable block is (dw, pw), got {roles}")
        self.dw, self.pw = (ConvBNAct(conv) for conv in spec.convs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw(self.dw(x))


class InvertedResidual(nn.Module):
    """MobileNet V2's block: 1×1 expansion (omitted when t = 1) → 3×3 depthwise → 1×1 linear
    projection, plus the input when the block keeps stride 1 and its channel count."""

    def __init__(self, spec: BlockSpec) -> None:
        super().__init__()
        roles = [conv.role for conv in spec.convs]
        if roles not in (["expand", "dw", "project"], ["dw", "project"]):
            raise ValueError(f"an inverted residual block is ([expand,] dw, project), got {roles}")
        for conv in spec.convs:
            self.add_module(conv.role, ConvBNAct(conv))
        self.use_residual = spec.residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for unit in self.children():
            out = unit(out)
        return x + out if self.use_residual else out


def _conv_block(spec: BlockSpec) -> nn.Module:
    (conv,) = spec.convs
    return ConvBNAct(conv)


_BLOCKS = {
    "conv": _conv_block,
    "separable": DepthwiseSeparable,
    "inverted_residual": InvertedResidual,
}


class Network(nn.Module):
    """``features`` → adaptive global average pooling → ``classifier`` (dropout, linear)."""

    def __init__(self, arch: Architecture, dropout: float = 0.0) -> None:
        super().__init__()
        self.arch = arch
        self.features = nn.Sequential(*(_BLOCKS[block.kind](block) for block in arch.blocks))
        # Adaptive, so any input side works: the last feature map is averaged to 1×1.
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(arch.num_features, arch.num_classes)
        )
        linear = self.classifier[-1]
        # Small weights and zero bias: the first logits are near zero, so the first softmax is
        # near uniform and the first loss is about ln(num_classes) rather than a random guess.
        nn.init.normal_(linear.weight, mean=0.0, std=0.01)
        nn.init.zeros_(linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))
