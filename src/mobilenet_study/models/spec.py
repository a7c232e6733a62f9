"""Plain descriptions of a network: what the module builder and the analytic cost both read.

Each model's topology table (mobilenet_v1.py, mobilenet_v2.py) expands into an
:class:`Architecture`: a tuple of :class:`BlockSpec`, each a few :class:`ConvSpec`. The builder
turns every block into one module; :func:`layer_specs` walks the same blocks for a given input
size and lists every weighted layer with its feature-map sizes, which is all the paper's cost
formulas need. So a table is stated once, and the analytic cost cannot drift from the module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Activation = Literal["relu", "relu6"] | None
BlockKind = Literal["conv", "separable", "inverted_residual"]
LayerKind = Literal["standard", "depthwise", "pointwise", "linear"]

# Channel counts are multiples of this: the papers' reference code does the same (vector units
# and memory lines like multiples of 8), and it makes V2 match torchvision at every α.
CHANNEL_DIVISOR = 8
# The widest width multiplier α a model may be built with (the grid checks against it too).
MAX_WIDTH = 4.0


def scale_channels(channels: int, width: float, divisor: int = CHANNEL_DIVISOR) -> int:
    """Channels of a layer at width multiplier α: α·c rounded to the nearest multiple of 8.

    Halves round up, the result is at least 8, and if rounding down would lose more than 10%
    of α·c we add 8 back (so small layers are never starved). At the study's α (0.25, 0.5,
    0.75, 1) every MobileNet V1 / baseline entry times α is already a multiple of 8, so the rule
    changes nothing there; V2's 16- and 24-channel layers do round (24 · 0.25 = 6 → 8), one
    reason its cost falls more slowly than α².
    """
    exact = channels * width
    rounded = max(divisor, int(exact + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * exact:
        rounded += divisor
    return rounded


@dataclass(frozen=True)
class ConvSpec:
    """One conv → BatchNorm → activation unit; ``role`` names its module inside the block."""

    role: str
    in_channels: int
    out_channels: int
    kernel: int
    stride: int = 1
    groups: int = 1
    activation: Activation = "relu"

    @property
    def padding(self) -> int:
        # "Same" padding: the output side is ceil(input side / stride).
        return self.kernel // 2

    @property
    def kind(self) -> LayerKind:
        if self.groups == 1:
            return "pointwise" if self.kernel == 1 else "standard"
        if self.groups == self.in_channels == self.out_channels:
            return "depthwise"
        raise ValueError(f"grouped conv {self} is neither standard nor depthwise")

    def out_size(self, in_size: int) -> int:
        return (in_size + 2 * self.padding - self.kernel) // self.stride + 1


@dataclass(frozen=True)
class BlockSpec:
    """One element of ``model.features``: a stem/standard conv, a depthwise-separable pair, or
    an inverted residual block (expand, depthwise, linear projection)."""

    kind: BlockKind
    convs: tuple[ConvSpec, ...]
    residual: bool = False

    def __post_init__(self) -> None:
        if self.residual and (self.stride != 1 or self.in_channels != self.out_channels):
            raise ValueError("a residual connection needs stride 1 and equal channels")

    @property
    def in_channels(self) -> int:
        return self.convs[0].in_channels

    @property
    def out_channels(self) -> int:
        return self.convs[-1].out_channels

    @property
    def stride(self) -> int:
        return math.prod(conv.stride for conv in self.convs)


@dataclass(frozen=True)
class Architecture:
    """A whole model: feature blocks, then global average pooling, then one linear layer."""

    name: str
    width: float
    variant: str
    num_classes: int
    blocks: tuple[BlockSpec, ...]

    @property
    def num_features(self) -> int:
        """Channels entering the classifier."""
        return self.blocks[-1].out_channels


@dataclass(frozen=True)
class LayerSpec:
    """One weighted layer at a given input size: the inputs to the paper's cost formulas.

    ``name`` is the module path in the built model (``features.3.dw``; the conv inside is
    ``<name>.conv``, the linear layer is ``classifier.1``). Sizes are feature-map sides in
    pixels; for the linear layer they are 1.
    """

    name: str
    kind: LayerKind
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    in_size: int
    out_size: int
    batch_norm: bool


def layer_specs(arch: Architecture, input_size: int) -> tuple[LayerSpec, ...]:
    """Every conv of ``arch`` and its classifier, with feature-map sides for ``input_size``."""
    if input_size < 1:
        raise ValueError(f"input size must be a positive number of pixels, got {input_size}")
    layers: list[LayerSpec] = []
    size = input_size
    for i, block in enumerate(arch.blocks):
        for conv in block.convs:
            out = conv.out_size(size)
            # A single-conv block is the ConvBNAct module itself, so it has no role suffix.
            name = f"features.{i}" if block.kind == "conv" else f"features.{i}.{conv.role}"
            layers.append(
                LayerSpec(
                    name=name,
                    kind=conv.kind,
                    in_channels=conv.in_channels,
                    out_channels=conv.out_channels,
                    kernel=conv.kernel,
                    stride=conv.stride,
                    in_size=size,
                    out_size=out,
                    batch_norm=True,
                )
            )
            size = out
    # Global average pooling leaves one value per channel, whatever the input size.
    layers.append(
        LayerSpec(
            name="classifier.1",
            kind="linear",
            in_channels=arch.num_features,
            out_channels=arch.num_classes,
            kernel=1,
            stride=1,
            in_size=1,
            out_size=1,
            batch_norm=False,
        )
    )
    return tuple(layers)
