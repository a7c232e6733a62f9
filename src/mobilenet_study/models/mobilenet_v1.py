"""MobileNet V1 (Howard et al. 2017, Table 1) and its "Conv MobileNet" twin (Table 4).

The baseline CNN is the same topology with every depthwise-separable pair replaced by one
standard 3×3 conv of the same output channels and stride, so comparing the two isolates what
depthwise separability buys and nothing else.
"""

from __future__ import annotations

from mobilenet_study.models.spec import BlockSpec, ConvSpec, scale_channels

STEM_CHANNELS = 32

# (output channels, stride) of the 13 depthwise-separable blocks after the 3×3/32 stem.
# Table 1 marks the second 1024 block "s2"; that is a known typo: at stride 1 the network ends
# at 7×7 on 224×224 inputs (the paper's "Avg Pool 7×7") and the paper's 569 M mult-adds come out.
BLOCKS: tuple[tuple[int, int], ...] = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    *((512, 1),) * 5,
    (1024, 2),
    (1024, 1),
)


def stem(width: float, variant: str, activation: str = "relu") -> BlockSpec:
    """The 3×3 stem: stride 2 for 224×224 ImageNet inputs, stride 1 for 32×32 CIFAR inputs
    (a stride-2 stem would leave a 32×32 image at 1×1 before the last stage)."""
    stride = 2 if variant == "imagenet" else 1
    out = scale_channels(STEM_CHANNELS, width)
    return BlockSpec("conv", (ConvSpec("conv", 3, out, 3, stride, activation=activation),))


def blocks(width: float, variant: str, *, separable: bool) -> tuple[BlockSpec, ...]:
    """Stem + the 13 blocks of Table 1: depthwise-separable pairs, or single 3×3 convs."""
    specs = [stem(width, variant)]
    channels = specs[0].out_channels
    for out_base, stride in BLOCKS:
        out = scale_channels(out_base, width)
        if separable:
            convs = (
                ConvSpec("dw", channels, channels, 3, stride, groups=channels),
                ConvSpec("pw", channels, out, 1),
            )
            specs.append(BlockSpec("separable", convs))
        else:
            specs.append(BlockSpec("conv", (ConvSpec("conv", channels, out, 3, stride),)))
        channels = out
    return tuple(specs)
