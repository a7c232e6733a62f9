"""params.yaml `theory:` — the experiments that answer the theory questions, validated once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from mobilenet_study import params as p

SECTION = "theory"
MAX_DEPTH = 200  # a bound that keeps a typo (3000) from running for days
# The networks halve the map twice (stages 2 and 3), and CIFAR-10's images are 32 px: an input
# side is a multiple of 4 (both halvings exact) from 8 (a 2×2 map in the last stage) to 32.
INPUT_SIZES = tuple(range(8, 33, 4))


def _widths(params: Mapping[str, Any], key: str) -> tuple[int, int, int]:
    values = p.items(params, key)
    if len(values) != 3:
        raise p.ParamError(key, values, "expected three stage widths, e.g. [16, 32, 64]")
    return tuple(p.as_integer(f"{key}[{i}]", v, low=1, high=1024) for i, v in enumerate(values))


@dataclass(frozen=True)
class PlainNet:
    """The deep plain ReLU CNN without BatchNorm of Q1a/b (propagation, symmetry, training)."""

    depth: int
    widths: tuple[int, int, int]


@dataclass(frozen=True)
class Schedule:
    """A short SGD run: steps of ``batch_size`` training images at a constant rate."""

    steps: int
    batch_size: int
    lr: float
    log_every: int


@dataclass(frozen=True)
class Degradation:
    """He et al. 2016 §4.2 on CIFAR-10: plain-n against ResNet-n at each depth 6n + 2."""

    depths: tuple[int, ...]
    widths: tuple[int, int, int]
    schedule: Schedule


@dataclass(frozen=True)
class GradCamChecks:
    """Q4b on a trained run of the study: the negative share of the raw map, and deletion."""

    run: str
    images_per_class: int
    deleted_fraction: float


@dataclass(frozen=True)
class TheoryParams:
    seed: int
    input_size: int  # the images' side in pixels, resized from 32 (a quarter of the cost at 16)
    images: int  # real training images in the batch the measurements at initialisation use
    draws: int  # weight draws the propagation ratios are averaged over (seeds seed, seed + 1...)
    plain: PlainNet
    symmetry: Schedule
    init_training: Schedule
    degradation: Degradation
    gradcam: GradCamChecks

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> TheoryParams:
        s = SECTION
        p.known_keys(params, s, [f.name for f in fields(cls)])
        p.known_keys(params, f"{s}.plain", [f.name for f in fields(PlainNet)])
        depths = p.integer_list(params, f"{s}.degradation.depths", low=8, high=MAX_DEPTH)
        for i, depth in enumerate(depths):
            if (depth - 2) % 6:
                raise p.ParamError(
                    f"{s}.degradation.depths[{i}]",
                    depth,
                    "allowed: a CIFAR ResNet depth 6n + 2 (8, 14, 20, 32, 44, 56, 110, ...)",
                )
        return cls(
            seed=p.integer(params, f"{s}.seed", low=0),
            input_size=_input_size(params, f"{s}.input_size"),
            images=p.integer(params, f"{s}.images", low=2, high=10_000),
            draws=p.integer(params, f"{s}.draws", low=1, high=1000),
            plain=PlainNet(
                depth=p.integer(params, f"{s}.plain.depth", low=4, high=MAX_DEPTH),
                widths=_widths(params, f"{s}.plain.widths"),
            ),
            symmetry=_schedule(params, f"{s}.symmetry"),
            init_training=_schedule(params, f"{s}.init_training"),
            degradation=Degradation(
                depths=tuple(sorted(depths)),
                widths=_widths(params, f"{s}.degradation.widths"),
                schedule=_schedule(params, f"{s}.degradation", extra=("depths", "widths")),
            ),
            gradcam=_gradcam(params, f"{s}.gradcam"),
        )


def _input_size(params: Mapping[str, Any], key: str) -> int:
    side = p.integer(params, key, low=INPUT_SIZES[0], high=INPUT_SIZES[-1])
    if side not in INPUT_SIZES:
        raise p.ParamError(
            key, side, f"allowed: one of {', '.join(map(str, INPUT_SIZES))} (pixels, a multiple "
            "of 4: the networks halve the map twice)",
        )  # fmt: skip
    return side


_SCHEDULE_KEYS = ("steps", "batch_size", "lr", "log_every")


def _schedule(params: Mapping[str, Any], key: str, extra: tuple[str, ...] = ()) -> Schedule:
    p.known_keys(params, key, [*_SCHEDULE_KEYS, *extra])
    schedule = Schedule(
        steps=p.integer(params, f"{key}.steps", low=1, high=100_000),
        batch_size=p.integer(params, f"{key}.batch_size", low=2, high=4096),
        lr=p.number(params, f"{key}.lr", low=0.0, high=10.0, low_inclusive=False),
        log_every=p.integer(params, f"{key}.log_every", low=1),
    )
    if schedule.log_every > schedule.steps:
        raise p.ParamError(
            f"{key}.log_every",
            schedule.log_every,
            f"must not exceed {key}.steps ({schedule.steps}): no point would be logged",
        )
    return schedule


def _gradcam(params: Mapping[str, Any], key: str) -> GradCamChecks:
    p.known_keys(params, key, [f.name for f in fields(GradCamChecks)])
    return GradCamChecks(
        run=p.text(params, f"{key}.run"),
        images_per_class=p.integer(params, f"{key}.images_per_class", low=1, high=1000),
        deleted_fraction=p.number(
            params, f"{key}.deleted_fraction", low=0.0, high=1.0, low_inclusive=False
        ),
    )


def check_gradcam_run(checks: GradCamChecks, trained: Sequence[str]) -> None:
    """``theory.gradcam.run`` must name a run of the grid (``trained``, the runs' names). The
    `theory_gradcam` stage checks it at load; the other theory stages do not read the grid,
    so that a change to the models' code does not rerun them."""
    if checks.run not in trained:
        raise p.ParamError(
            f"{SECTION}.gradcam.run",
            checks.run,
            f"allowed: a trained run of the grid: {', '.join(trained)}",
        )
