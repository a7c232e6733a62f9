"""params.yaml `theory:` — the experiments that answer the theory questions, validated once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from mobilenet_study import params as p

MAX_DEPTH = 200  # a bound that keeps a typo (3000) from running for days
# The networks halve the map twice (stages 2 and 3), and CIFAR-10's images are 32 px: an input
# side is a multiple of 4 (both halvings exact) from 8 (a 2×2 map in the last stage) to 32.
INPUT_SIZES = tuple(range(8, 33, 4))


def _widths(key: str, value: Any) -> tuple[int, int, int]:
    values = p.as_list(key, value)
    if len(values) != 3:
        raise p.ParamError(key, values, "expected three stage widths, e.g. [16, 32, 64]")
    return tuple(p.as_integer(f"{key}[{i}]", v, low=1, high=1024) for i, v in enumerate(values))


def _input_size(key: str, value: Any) -> int:
    side = p.as_integer(key, value, low=INPUT_SIZES[0], high=INPUT_SIZES[-1])
    if side not in INPUT_SIZES:
        raise p.ParamError(
            key, side, f"allowed: one of {', '.join(map(str, INPUT_SIZES))} (pixels, a multiple "
            "of 4: the networks halve the map twice)",
        )  # fmt: skip
    return side


@dataclass(frozen=True)
class PlainNet:
    """The deep plain ReLU CNN without BatchNorm of Q1a/b (propagation, symmetry, training)."""

    depth: int = p.setting(low=4, high=MAX_DEPTH)
    widths: tuple[int, int, int] = p.setting(convert=_widths)


@dataclass(frozen=True)
class Schedule(p.Section):
    """A short SGD run: steps of ``batch_size`` training images at a constant rate."""

    steps: int = p.setting(low=1, high=100_000)
    batch_size: int = p.setting(low=2, high=4096)
    lr: float = p.setting(low=0.0, high=10.0, low_inclusive=False)
    log_every: int = p.setting(low=1)

    def checked(self, params: Mapping[str, Any], key: str) -> Schedule:
        """At least one point of the run is logged."""
        if self.log_every > self.steps:
            raise p.ParamError(
                f"{key}.log_every",
                self.log_every,
                f"must not exceed {key}.steps ({self.steps}): no point would be logged",
            )
        return self


@dataclass(frozen=True)
class Degradation(p.Section):
    """He et al. 2016 §4.2 on CIFAR-10: plain-n against ResNet-n at each depth 6n + 2."""

    depths: tuple[int, ...] = p.setting(low=8, high=MAX_DEPTH)
    widths: tuple[int, int, int] = p.setting(convert=_widths)
    # Its keys (steps, batch_size, lr, log_every) sit beside depths and widths.
    schedule: Schedule = p.setting(inline=True)

    def checked(self, params: Mapping[str, Any], key: str) -> Degradation:
        """Every depth is a CIFAR ResNet's; the depths are kept in increasing order."""
        for i, depth in enumerate(self.depths):
            if (depth - 2) % 6:
                raise p.ParamError(
                    f"{key}.depths[{i}]",
                    depth,
                    "allowed: a CIFAR ResNet depth 6n + 2 (8, 14, 20, 32, 44, 56, 110, ...)",
                )
        return replace(self, depths=tuple(sorted(self.depths)))


@dataclass(frozen=True)
class GradCamChecks:
    """Q4b on a trained run of the study: the negative share of the raw map, and deletion."""

    run: str
    images_per_class: int = p.setting(low=1, high=1000)
    deleted_fraction: float = p.setting(low=0.0, high=1.0, low_inclusive=False)


@dataclass(frozen=True)
class TheoryParams(p.Section):
    """params.yaml `theory:` — every theory experiment's settings."""

    SECTION = "theory"

    seed: int = p.setting(low=0)
    # The images' side in pixels, resized from 32 (a quarter of the cost at 16).
    input_size: int = p.setting(convert=_input_size)
    # Real training images in the batch the measurements at initialisation use.
    images: int = p.setting(low=2, high=10_000)
    # Weight draws the propagation ratios are averaged over (seeds seed, seed + 1...).
    draws: int = p.setting(low=1, high=1000)
    plain: PlainNet
    symmetry: Schedule
    init_training: Schedule
    degradation: Degradation
    gradcam: GradCamChecks


def check_gradcam_run(checks: GradCamChecks, trained: Sequence[str]) -> None:
    """``theory.gradcam.run`` must name a run of the grid (``trained``, the runs' names). The
    `theory_gradcam` stage checks it at load; the other theory stages do not read the grid,
    so that a change to the models' code does not rerun them."""
    if checks.run not in trained:
        raise p.ParamError(
            f"{TheoryParams.SECTION}.gradcam.run",
            checks.run,
            f"allowed: a trained run of the grid: {', '.join(trained)}",
        )
