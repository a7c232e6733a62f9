"""The study's models, by name: ``build(name, width, num_classes, variant)``.

- ``mobilenet_v1``: Howard et al. 2017, Table 1, with width multiplier α.
- ``baseline``: the same topology with standard 3×3 convs instead of depthwise-separable
  pairs ("Conv MobileNet", Table 4), the traditional CNN the study compares against.
- ``mobilenet_v2``: Sandler et al. 2018, Table 2.

:data:`MODELS` gives each model its role in the study's comparisons (candidate, its
standard-conv twin, reference): the grid, the study's tables, the report and ``make results``
read the roles here, so that a model added to :data:`MODELS` and to the grid is compared too.

``variant="cifar"`` (32×32 inputs and smaller) runs the stem at stride 1 (and, in V2, the
first stride-2 stage too); ``variant="imagenet"`` is the papers' network for 224×224 inputs,
used to check the cost against the papers' tables. The resolution multiplier ρ is not a
property of the module: global average pooling is adaptive, so ρ is just the input side.

:func:`architecture` and :func:`layer_specs` describe a model without building it; the
analytic cost (:mod:`.counting`) reads them, so every table is stated once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from mobilenet_study.models import mobilenet_v1, mobilenet_v2
from mobilenet_study.models.blocks import (
    ConvBNAct,
    DepthwiseSeparable,
    InvertedResidual,
    Network,
)
from mobilenet_study.models.spec import (
    CHANNEL_DIVISOR,
    MAX_WIDTH,
    Architecture,
    BlockSpec,
    ConvSpec,
    LayerSpec,
    scale_channels,
)
from mobilenet_study.models.spec import layer_specs as _layer_specs
from mobilenet_study.params import StudyError

VARIANTS: tuple[str, ...] = ("cifar", "imagenet")

# A model's part in the study's comparisons: the candidate (whose multipliers the study
# measures), its twin with standard convs (the traditional CNN it is set against), or a
# reference (another MobileNet compared with the candidate at the points both were trained).
ROLES: tuple[str, ...] = ("candidate", "twin", "reference")


@dataclass(frozen=True)
class ModelEntry:
    """One model of the study: its block table, its role and how the report names it."""

    blocks: Callable[[float, str], tuple[BlockSpec, ...]]
    role: str
    label: str


MODELS: dict[str, ModelEntry] = {
    "mobilenet_v1": ModelEntry(
        lambda width, variant: mobilenet_v1.blocks(width, variant, separable=True),
        "candidate",
        "MobileNet V1",
    ),
    "baseline": ModelEntry(
        lambda width, variant: mobilenet_v1.blocks(width, variant, separable=False),
        "twin",
        "baseline CNN",
    ),
    "mobilenet_v2": ModelEntry(mobilenet_v2.blocks, "reference", "MobileNet V2"),
}
MODEL_NAMES: tuple[str, ...] = tuple(MODELS)


def _with_role(role: str) -> tuple[str, ...]:
    return tuple(name for name, entry in MODELS.items() if entry.role == role)


(CANDIDATE,), (TWIN,) = _with_role("candidate"), _with_role("twin")  # exactly one of each
REFERENCES: tuple[str, ...] = _with_role("reference")
# The depthwise-separable families (the report's "most accurate MobileNet" is one of these).
MOBILENETS: tuple[str, ...] = (CANDIDATE, *REFERENCES)

__all__ = [
    "CANDIDATE",
    "CHANNEL_DIVISOR",
    "MAX_WIDTH",
    "MOBILENETS",
    "MODELS",
    "MODEL_NAMES",
    "REFERENCES",
    "ROLES",
    "TWIN",
    "VARIANTS",
    "Architecture",
    "BlockSpec",
    "ConvBNAct",
    "ConvSpec",
    "DepthwiseSeparable",
    "InvertedResidual",
    "LayerSpec",
    "ModelEntry",
    "ModelError",
    "Network",
    "architecture",
    "build",
    "layer_specs",
    "scale_channels",
]


class ModelError(StudyError, ValueError):
    """An unknown model name, variant, or a width/class count no model can have."""


def architecture(
    name: str, width: float = 1.0, num_classes: int = 10, variant: str = "cifar"
) -> Architecture:
    """The block-by-block description of model ``name`` at width multiplier α = ``width``."""
    if name not in MODEL_NAMES:
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(MODEL_NAMES)}")
    if variant not in VARIANTS:
        raise ModelError(f"unknown variant {variant!r}; known variants: {', '.join(VARIANTS)}")
    is_number = isinstance(width, (int, float)) and not isinstance(width, bool)
    if not (is_number and math.isfinite(width) and 0 < width <= MAX_WIDTH):
        raise ModelError(f"width multiplier α must be a number in (0, {MAX_WIDTH}], got {width!r}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ModelError(f"num_classes must be a positive whole number, got {num_classes!r}")
    blocks = MODELS[name].blocks(float(width), variant)
    return Architecture(name, float(width), variant, num_classes, blocks)


def layer_specs(
    name: str,
    width: float = 1.0,
    num_classes: int = 10,
    variant: str = "cifar",
    input_size: int = 32,
) -> tuple[LayerSpec, ...]:
    """Every weighted layer of the model with its feature-map sides for ``input_size``."""
    return _layer_specs(architecture(name, width, num_classes, variant), input_size)


def build(
    name: str,
    width: float = 1.0,
    num_classes: int = 10,
    variant: str = "cifar",
    *,
    dropout: float = 0.0,
) -> Network:
    """A freshly initialised model: ``features`` → global average pool → ``classifier``."""
    if not 0.0 <= dropout < 1.0:
        raise ModelError(f"dropout must be in [0, 1), got {dropout!r}")
    return Network(architecture(name, width, num_classes, variant), dropout=dropout)
