"""MobileNet V2 (Sandler et al. 2018, Table 2): inverted residuals with linear bottlenecks."""

from __future__ import annotations

from mobilenet_study.models.mobilenet_v1 import stem
from mobilenet_study.models.spec import BlockSpec, ConvSpec, scale_channels

HEAD_CHANNELS = 1280

# Table 2 rows after the 3×3/32 stem: expansion t, output channels c, repeats n, stride s of
# the first repeat (the others have stride 1).
BLOCKS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)

# CIFAR: the stem and this row run at stride 1, so a 32×32 input keeps 32×32 through the
# first stages and ends at 4×4 (total stride 8) instead of 1×1.
CIFAR_STRIDE_ONE_ROW = 1


def inverted_residual(
    in_channels: int, out_channels: int, expansion: int, stride: int
) -> BlockSpec:
    """1×1 expand (ReLU6; omitted at t = 1) → 3×3 depthwise (ReLU6) → 1×1 project (linear).

    The projection has no activation (the "linear bottleneck"): a ReLU in the narrow layer
    would destroy information. The block adds its input only when shapes allow it.
    """
    hidden = in_channels * expansion
    convs = (
        [ConvSpec("expand", in_channels, hidden, 1, activation="relu6")] if expansion > 1 else []
    )
    convs += [
        ConvSpec("dw", hidden, hidden, 3, stride, groups=hidden, activation="relu6"),
        ConvSpec("project", hidden, out_channels, 1, activation=None),
    ]
    residual = stride == 1 and in_channels == out_channels
    return BlockSpec("inverted_residual", tuple(convs), residual=residual)


def blocks(width: float, variant: str) -> tuple[BlockSpec, ...]:
    """Stem, the 17 inverted residual blocks of Table 2, and the 1×1 head conv."""
    specs = [stem(width, variant, activation="relu6")]
    channels = specs[0].out_channels
    for row, (expansion, out_base, repeats, first_stride) in enumerate(BLOCKS):
        out = scale_channels(out_base, width)
        stride = 1 if variant == "cifar" and row == CIFAR_STRIDE_ONE_ROW else first_stride
        for i in range(repeats):
            specs.append(inverted_residual(channels, out, expansion, stride if i == 0 else 1))
            channels = out
    # The head is not shrunk below 1280 for α < 1: the paper keeps it wide so the classifier
    # still sees rich features (it grows for α > 1).
    head = scale_channels(HEAD_CHANNELS, max(1.0, width))
    specs.append(BlockSpec("conv", (ConvSpec("conv", channels, head, 1, activation="relu6"),)))
    return tuple(specs)
