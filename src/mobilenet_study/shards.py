"""The grid in shards, to train on N machines or queue workers: the split, and the DVC commands
that train a shard (`make shard`), put the shards back together (`make assemble`) and queue
them on one machine (`make shards`).

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

import datetime
import os
import re
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mobilenet_study.data.source import is_url
from mobilenet_study.grid import Grid, Run
from mobilenet_study.models.counting import analytic_cost
from mobilenet_study.params import StudyError
from mobilenet_study.profiles import (
    override_args,
    pipeline_command,
    profile_overrides,
    with_overrides,
)
from mobilenet_study.stage import usable_cpus

# The stages that need no trained model, besides `download` (which every stage pulls in); not
# `cost`, whose CPU latency would be timed among the trainers' processes.
CPU_STAGES = ("residual", "theory_init", "theory_degradation")
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


def shard_stages(
    params: Mapping[str, Any], overrides: Mapping[str, Any], index: int, count: int
) -> list[str]:
    """The training stages of shard ``index`` of ``count``, for the grid the profile trains."""
    grid = Grid.from_params(with_overrides(params, overrides))
    return [run.stage for run in shard(grid.runs, index, count)]


def _stamp() -> str:
    """``20261129T012000`` (UTC, to the second): a queued name is unique, so it can run again."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")


def shard_name(index: int, count: int) -> str:
    """``shard-1-of-2-20261129T012000``."""
    return f"shard-{index}-of-{count}-{_stamp()}"


def shard_commands(
    params: Mapping[str, Any], profile: str, data: str | None, index: int, count: int
) -> list[list[str]]:
    """Train one shard as one experiment, then push its outputs and run-cache to the default
    remote."""
    overrides = profile_overrides(profile, data)
    stages = shard_stages(params, overrides, index, count)
    if not stages:
        raise StudyError(f"shard {index}/{count} has no runs: the grid has fewer than {count}")
    run = ["dvc", "exp", "run", "-n", shard_name(index, count), *override_args(overrides)]
    return [[*run, *stages], ["dvc", "push", "--run-cache"]]


def assemble_commands(profile: str, data: str | None) -> list[list[str]]:
    """Pull every shard's run-cache, then run the whole pipeline with ``--pull``: each trained
    stage finds its run-cache entry and pulls the outputs it names instead of training; the
    rest (cost, deploy, aggregate, Grad-CAM) run here. (`dvc pull --run-cache` brings the
    entries; the outputs they name come with the stage that restores them, hence
    ``--allow-missing``: this workspace's own lock file may name outputs no machine pushed.)"""
    pull = ["dvc", "pull", "--run-cache", "--allow-missing"]
    return [pull, [*pipeline_command(profile, data), "--pull"]]


def queue_commands(
    params: Mapping[str, Any], profile: str, data: str | None, count: int
) -> tuple[list[str], list[list[str]]]:
    """All ``count`` shards as queued experiments and a queue worker for each: the names of
    the queued experiments, and the commands.

    For the full profile (trainers on one GPU), one more experiment runs the stages that need
    no trained model (:data:`CPU_STAGES`) on the CPU meanwhile, instead of after the training;
    the assembly restores them from the run-cache like the shards' runs. On a CPU profile an
    extra worker would only take cores from the trainers.
    """
    overrides = profile_overrides(profile, data)
    stages = {shard_name(i, count): shard_stages(params, overrides, i, count)
              for i in range(1, count + 1)}  # fmt: skip
    if profile == "full":
        stages[f"cpu-stages-{_stamp()}"] = list(CPU_STAGES)
    queued = [
        ["dvc", "exp", "run", "--queue", "-n", name, *override_args(overrides), *targets]
        for name, targets in stages.items()
    ]
    names = list(stages)
    start = ["dvc", "queue", "start", "--jobs", str(len(names))]
    if "OMP_NUM_THREADS" not in os.environ:
        # The workers' stages inherit this: N trainers with every core each would fight over
        # the cores (a CPU run) rather than share them.
        start = ["env", f"OMP_NUM_THREADS={threads_per_worker(len(names))}", *start]
    return names, [*queued, start]


def threads_per_worker(count: int) -> int:
    """The CPUs this process may use, shared among ``count`` queue workers (at least one each)."""
    return max(1, usable_cpus() // count)


def queue_states(names: Sequence[str]) -> dict[str, str]:
    """Each named queued experiment's state, from DVC's own queue API (what `dvc queue status`
    prints): Queued, Running, Success or Failed; ``missing`` if the queue has no such name."""
    from dvc.repo import Repo  # a slow import that only `make shards` needs

    with Repo() as repo:
        entries = repo.experiments.celery_queue.status()
    states = {entry["name"]: entry["status"] for entry in entries if entry.get("name") in names}
    return {name: states.get(name, "missing") for name in names}


def wait_for_queue(names: Sequence[str], poll_s: float = 5.0) -> list[str]:
    """Wait until every named queued experiment has ended; the ones that did not succeed."""
    while True:
        states = queue_states(names)
        if not any(state in ("Queued", "Running") for state in states.values()):
            return [name for name, state in states.items() if state != "Success"]
        time.sleep(poll_s)


def remote_check() -> None:
    """`make shard` pushes to the default DVC remote: say how to set one if there is none."""
    found = subprocess.run(["dvc", "remote", "default"], capture_output=True, text=True)
    if found.returncode != 0 or not found.stdout.strip():
        raise StudyError(
            "no default DVC remote: shards meet in one. Set it once and commit .dvc/config, "
            "e.g. `dvc remote add -d storage s3://bucket/mobilenet-study` (or gs://, "
            "ssh://host/path, or a shared folder path); see docs/scaling-out.md."
        )


def local_absolute(data: str | None) -> str | None:
    """A relative local path made absolute; a URL, absolute path or None unchanged."""
    if not data or is_url(data) or Path(data).expanduser().is_absolute():
        return data
    return str(Path(data).resolve())
