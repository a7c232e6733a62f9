"""Splitting the grid's training runs into N shards, to train on N machines or queue workers.

A shard is a list of ``train@<run>`` stages. Every run lands in exactly one shard, and the
split depends only on the grid (never on the machine or the order runs finished), so every
machine computes the same shards. Runs are dealt out largest first to the shard with the least
work so far (longest-processing-time first), the work of a run estimated by its MACs per image:
the baseline at α = ρ = 1 costs about 480 times MobileNet V1 at α 0.25, ρ 0.5, so a plain
round-robin would leave one shard with most of the work.

A run trained in any shard is the same DVC stage everywhere (its command, code, ``train``
params and the content of ``data/prepared``), so the run-cache entry one machine pushes is a hit
on every other: that is how the shards are put back together (docs/scaling-out.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mobilenet_study.cost import analytic_cost
from mobilenet_study.grid import Run
from mobilenet_study.params import StudyError

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` -> ``(2, 4)``: the second of four shards (counting from 1)."""
    match = _SHARD.match(text or "")
    index, count = (int(match[1]), int(match[2])) if match else (0, 0)
    if not match or count < 1 or not 1 <= index <= count:
        raise StudyError(
            f"SHARD is {text!r}; expected i/N with 1 <= i <= N, e.g. `make shard SHARD=1/2`"
        )
    return index, count


def run_work(run: Run) -> int:
    """A run's training work, estimated by its model's MACs per image at its input size."""
    return analytic_cost(run.model, run.width, run.input_size).macs


def split(runs: Sequence[Run], count: int) -> list[list[Run]]:
    """The runs dealt into ``count`` shards, largest first to the least loaded shard (ties: the
    lower shard), each shard in grid order."""
    if count < 1:
        raise ValueError(f"need at least one shard, got {count}")
    position = {run.name: i for i, run in enumerate(runs)}
    loads = [0] * count
    shards: list[list[Run]] = [[] for _ in range(count)]
    for run in sorted(runs, key=lambda r: (-run_work(r), position[r.name])):
        target = loads.index(min(loads))
        shards[target].append(run)
        loads[target] += run_work(run)
    return [sorted(shard, key=lambda r: position[r.name]) for shard in shards]


def shard(runs: Sequence[Run], index: int, count: int) -> list[Run]:
    """The ``index``-th (from 1) of ``count`` shards of ``runs``."""
    return split(runs, count)[index - 1]
