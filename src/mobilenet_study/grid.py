"""The study's grid: which (model, width α, resolution ρ) points are profiled and trained.

params.yaml `grid:` holds two blocks, each a cross product of models x widths x resolutions:
``sweep`` (MobileNet V1 over every α and ρ) and ``reference`` (the baseline CNN and MobileNet V2
at a few points). dvc.yaml expands the same lists with `matrix`, so :attr:`RunPoint.name` is
exactly the suffix DVC gives each training stage: ``train@mobilenet_v1-0.5-0.75``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mobilenet_study import params as p

# CIFAR-10 images are 32x32; ρ scales this side.
BASE_RESOLUTION = 32
MIN_INPUT_SIZE = 8
MAX_WIDTH = 4.0
GRID_BLOCKS = ("sweep", "reference")


def input_size(resolution: float) -> int:
    """Input side for resolution multiplier ρ: round(ρ · 32), halves rounded up."""
    return math.floor(resolution * BASE_RESOLUTION + 0.5)


def check_width(key: str, width: Any) -> float:
    """A width multiplier α in (0, 4]."""
    try:
        return p.as_number(key, width, low=0.0, high=MAX_WIDTH, low_inclusive=False)
    except p.ParamError:
        allowed = f"allowed: a width multiplier α in (0, {MAX_WIDTH}]"
        raise p.ParamError(key, width, allowed) from None


def check_resolution(key: str, resolution: Any) -> float:
    """A resolution multiplier whose input side round(ρ · 32) is at least 8 pixels."""
    allowed = (
        f"allowed: a resolution multiplier ρ with round(ρ · {BASE_RESOLUTION}) >= "
        f"{MIN_INPUT_SIZE} pixels, i.e. ρ >= {MIN_INPUT_SIZE / BASE_RESOLUTION - 1 / 64}, "
        f"and ρ <= {MAX_WIDTH}"
    )
    try:
        value = p.as_number(key, resolution, low=0.0, high=MAX_WIDTH, low_inclusive=False)
    except p.ParamError:
        raise p.ParamError(key, resolution, allowed) from None
    if input_size(value) < MIN_INPUT_SIZE:
        raise p.ParamError(key, resolution, allowed)
    return value


@dataclass(frozen=True)
class RunPoint:
    """One grid point: a model at width multiplier α and resolution multiplier ρ."""

    model: str
    width: float
    resolution: float

    @property
    def name(self) -> str:
        """The run's name, as DVC's matrix writes it: ``mobilenet_v1-0.5-0.75``."""
        return f"{self.model}-{self.width}-{self.resolution}"

    @property
    def input_size(self) -> int:
        return input_size(self.resolution)


@dataclass(frozen=True)
class Grid:
    points: tuple[RunPoint, ...]

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Grid:
        from mobilenet_study.models import MODEL_NAMES  # the registry is the list of models

        points: list[RunPoint] = []
        for block in GRID_BLOCKS:
            key = f"grid.{block}"
            models = p.items(params, f"{key}.models")
            for i, model in enumerate(models):
                if model not in MODEL_NAMES:
                    raise p.ParamError(
                        f"{key}.models[{i}]", model, f"allowed: {', '.join(MODEL_NAMES)}"
                    )
            widths = p.items(params, f"{key}.widths")
            resolutions = p.items(params, f"{key}.resolutions")
            widths = [check_width(f"{key}.widths[{i}]", w) for i, w in enumerate(widths)]
            resolutions = [
                check_resolution(f"{key}.resolutions[{i}]", r) for i, r in enumerate(resolutions)
            ]
            points += [
                RunPoint(model, w, r) for model in models for w in widths for r in resolutions
            ]
        names = [pt.name for pt in points]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise p.ParamError("grid", duplicates, "each point may appear in only one block")
        return cls(tuple(points))

    def find(self, name: str) -> RunPoint:
        for point in self.points:
            if point.name == name:
                return point
        raise p.ParamError("grid", name, f"known runs: {', '.join(pt.name for pt in self.points)}")
