"""The study's grid: which (model, width α, resolution ρ) points are profiled, and which runs
(a point trained with one seed) are trained.

params.yaml `grid:` holds three blocks, each a cross product of models x widths x resolutions:
``sweep`` (MobileNet V1, and the baseline CNN at the same points where it is listed there),
``twin`` (the baseline at points of its own, where the sweep does not list it: the cpu
profile's baseline at ρ = 1 only; no models in the full profile) and ``reference``
(MobileNet V2 at a few points), and ``seeds``: every point is trained once per seed.
dvc.yaml expands the same lists with `matrix`, so :attr:`Run.name` is exactly the suffix DVC
gives each training stage: ``train@mobilenet_v1-0.5-0.75-0`` (model, α, ρ, seed, joined by
DVC with "-").

The model names and the widest α are the models' facts (:mod:`mobilenet_study.models`); this
module only reads them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from mobilenet_study import params as p
from mobilenet_study.models import MAX_WIDTH, MODEL_NAMES, TWIN

# CIFAR-10 images are 32x32; ρ scales this side.
BASE_RESOLUTION = 32
MIN_INPUT_SIZE = 8
MAX_RESOLUTION = 4.0
MAX_SEED = 2**31 - 1
# Each block of params.yaml `grid:` and the matrix stage of dvc.yaml that trains its points.
TRAIN_STAGES = {"sweep": "train", "twin": "train_twin", "reference": "train_reference"}


@dataclass(frozen=True)
class Multiplier:
    """One of the paper's two multipliers: its column in the study's tables, its symbol, and
    the other multiplier's (held fixed when this one varies)."""

    name: str
    symbol: str
    other: str
    other_symbol: str


WIDTH = Multiplier("width", "α", "resolution", "ρ")
RESOLUTION = Multiplier("resolution", "ρ", "width", "α")
MULTIPLIERS = (WIDTH, RESOLUTION)


def multiplier(name: str) -> Multiplier:
    """The multiplier whose column is ``name`` ("width" or "resolution")."""
    for found in MULTIPLIERS:
        if found.name == name:
            return found
    raise ValueError(f"a multiplier is width or resolution, got {name!r}")


def input_size(resolution: float) -> int:
    """Input side for resolution multiplier ρ: round(ρ · 32), halves rounded up."""
    return math.floor(resolution * BASE_RESOLUTION + 0.5)


def check_width(key: str, width: Any) -> float:
    """A width multiplier α in (0, 4], returned as written (``1`` stays ``1``: DVC names the
    stage ``train@mobilenet_v1-1-1-0`` then, and the run's paths must say the same)."""
    try:
        p.as_number(key, width, low=0.0, high=MAX_WIDTH, low_inclusive=False)
        return width
    except p.ParamError:
        allowed = f"allowed: a width multiplier α in (0, {MAX_WIDTH}]"
        raise p.ParamError(key, width, allowed) from None


def check_resolution(key: str, resolution: Any) -> float:
    """A resolution multiplier whose input side round(ρ · 32) is at least 8 pixels."""
    allowed = (
        f"allowed: a resolution multiplier ρ with round(ρ · {BASE_RESOLUTION}) >= "
        f"{MIN_INPUT_SIZE} pixels, i.e. ρ >= {MIN_INPUT_SIZE / BASE_RESOLUTION - 1 / 64}, "
        f"and ρ <= {MAX_RESOLUTION}"
    )
    try:
        value = p.as_number(key, resolution, low=0.0, high=MAX_RESOLUTION, low_inclusive=False)
    except p.ParamError:
        raise p.ParamError(key, resolution, allowed) from None
    if input_size(value) < MIN_INPUT_SIZE:
        raise p.ParamError(key, resolution, allowed)
    return resolution  # as written, like check_width


@dataclass(frozen=True)
class GridPoint:
    """One grid point: a model at width multiplier α and resolution multiplier ρ."""

    model: str
    width: float
    resolution: float
    block: str = "sweep"  # the params.yaml grid block it comes from

    @property
    def name(self) -> str:
        """``mobilenet_v1-0.5-0.75``: the point, whatever the seed (the cost stage's key)."""
        return f"{self.model}-{self.width}-{self.resolution}"

    @property
    def input_size(self) -> int:
        return input_size(self.resolution)


@dataclass(frozen=True)
class Run:
    """One training run: a grid point trained with one seed."""

    point: GridPoint
    seed: int

    @property
    def name(self) -> str:
        """The run's name, as DVC's matrix writes it: ``mobilenet_v1-0.5-0.75-0``."""
        return f"{self.point.name}-{self.seed}"

    @property
    def stage(self) -> str:
        """The DVC stage that trains it: ``train@<run>``, ``train_twin@<run>`` or
        ``train_reference@<run>``."""
        return f"{TRAIN_STAGES[self.point.block]}@{self.name}"

    # The point's fields, for readers of a run.
    @property
    def model(self) -> str:
        return self.point.model

    @property
    def width(self) -> float:
        return self.point.width

    @property
    def resolution(self) -> float:
        return self.point.resolution

    @property
    def input_size(self) -> int:
        return self.point.input_size


@dataclass(frozen=True)
class GridBlock:
    """A block of params.yaml `grid:`: its points are the cross product of the three lists."""

    models: tuple[str, ...] = p.setting(choices=MODEL_NAMES)
    widths: tuple[float, ...] = p.setting(convert=check_width)
    resolutions: tuple[float, ...] = p.setting(convert=check_resolution)


@dataclass(frozen=True)
class TwinBlock(GridBlock):
    """The ``twin`` block: the baseline alone, or no model at all (then no run)."""

    models: tuple[str, ...] = p.setting(choices=(TWIN,), empty=True)


@dataclass(frozen=True)
class ReferenceBlock(GridBlock):
    """The ``reference`` block: any model, or none (a study without a reference row)."""

    models: tuple[str, ...] = p.setting(choices=MODEL_NAMES, empty=True)


@dataclass(frozen=True)
class Grid(p.Section):
    """params.yaml `grid:` — a block per training stage (:data:`TRAIN_STAGES`), and the seeds."""

    SECTION = "grid"

    sweep: GridBlock
    twin: TwinBlock
    reference: ReferenceBlock
    seeds: tuple[int, ...] = p.setting(low=0, high=MAX_SEED)

    @cached_property
    def points(self) -> tuple[GridPoint, ...]:
        """Every block's points, block by block, in the order of its lists."""
        return tuple(
            GridPoint(model, w, r, block)
            for block in TRAIN_STAGES
            for model in getattr(self, block).models
            for w in getattr(self, block).widths
            for r in getattr(self, block).resolutions
        )

    def checked(self, params: Mapping[str, Any], key: str) -> Grid:
        """Each point belongs to one block, so that one training stage trains it."""
        names = [pt.name for pt in self.points]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise p.ParamError(
                key,
                duplicates,
                "a point may appear in one block of "
                + ", ".join(f"grid.{block}" for block in TRAIN_STAGES),
            )
        return self

    @property
    def runs(self) -> tuple[Run, ...]:
        """Every point once per seed, in grid order (points, then seeds)."""
        return tuple(Run(point, seed) for point in self.points for seed in self.seeds)

    @property
    def first_seed(self) -> int:
        """The seed whose runs the study's paired tests compare (``grid.seeds[0]``)."""
        return self.seeds[0]

    def find(self, name: str) -> Run:
        for run in self.runs:
            if run.name == name:
                return run
        raise p.ParamError("grid", name, f"known runs: {', '.join(r.name for r in self.runs)}")
