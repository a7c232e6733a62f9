"""The pipeline's commands: `make quick`, `make cpu`, `make repro`, and the grid in shards
(`make shard`, `make assemble`, `make shards`).

The quick and cpu profiles are sets of `dvc exp run -S key=value` overrides on top of
params.yaml, so the committed defaults stay those of the full study and a profile's run is an
ordinary DVC experiment (`dvc exp show` lists it). ``DATA=<path>`` sets ``data.source`` for
offline machines. A profile's run records its wall time in ``logs/<profile>-runs.jsonl``
(one line per attempt), which `make results` publishes.

Scaling out uses DVC's own machinery, no scheduler of ours. A shard trains its runs as one DVC
experiment; on N machines each pushes its outputs and run-cache to the shared DVC remote
(`dvc push --run-cache`), and the machine that assembles pulls them (`dvc pull --run-cache`) and
runs the pipeline, whose training stages then restore from the run-cache instead of training.
On one machine the shards are queued experiments run by `dvc queue start -j N` workers, which
share the repository's cache, so the run-cache is there already.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mobilenet_study.data.source import is_url
from mobilenet_study.grid import Grid
from mobilenet_study.params import StudyError, load_params
from mobilenet_study.shards import parse_shard, shard
from mobilenet_study.stage import usable_cpus
from mobilenet_study.status import Monitor

# Overrides of params.yaml for a run of the whole pipeline in minutes on a 2-core CPU: MobileNet
# V1 and the baseline CNN at the same 2x2 (α, ρ) points, so that every quick run has the α and ρ
# steps, the point-by-point comparison and both Pareto frontiers; V2 beside V1 at its smallest
# point; 2,000 training images (200 per class), 3 epochs, and fewer latency repeats. The
# baseline at α 0.5 is half of the training time (it has 8x V1's MACs), which is why ρ stops
# at 0.75 here; with the ONNX deploy stage, 3 epochs keep a fresh clone's `make quick` (set-up
# included) within 10 minutes on 2 cores.
QUICK_OVERRIDES: dict[str, Any] = {
    "grid.sweep.widths": [0.25, 0.5],
    "grid.sweep.resolutions": [0.5, 0.75],
    "grid.reference.widths": [0.25],
    "grid.reference.resolutions": [0.5],
    "train.device": "cpu",
    "train.epochs": 3,
    "train.batch_size": 64,  # more, smaller steps: MobileNet learns slowly from few steps
    "train.lr": 0.1,
    "train.warmup_epochs": 1,
    "train.train_subset": 2000,
    "train.test_subset": 1000,
    "train.compile": False,  # compiling (30-60 s a run) would outlast these short runs
    # Grad-CAM of the baseline and V1 side by side at the largest (α, ρ), and V1 at the smallest.
    "gradcam.runs": ["baseline-0.5-0.75-0", "mobilenet_v1-0.5-0.75-0", "mobilenet_v1-0.25-0.5-0"],
    "cost.warmup": 2,
    "cost.repeats": 10,
    "deploy.warmup": 2,
    "deploy.repeats": 10,
    # The theory stages in seconds: a 12-layer plain net, ResNet-8/14 of 8/16/32 filters.
    "theory.images": 64,
    "theory.draws": 2,
    "theory.plain.depth": 12,
    "theory.plain.widths": [8, 16, 16],
    "theory.symmetry.steps": 20,
    "theory.symmetry.batch_size": 32,
    "theory.symmetry.log_every": 10,
    "theory.init_training.steps": 40,
    "theory.init_training.batch_size": 32,
    "theory.init_training.log_every": 5,
    "theory.degradation.depths": [8, 14],
    "theory.degradation.widths": [8, 16, 32],
    "theory.degradation.steps": 40,
    "theory.degradation.batch_size": 32,
    "theory.degradation.log_every": 5,
    "theory.gradcam.run": "mobilenet_v1-0.5-0.75-0",
    "theory.gradcam.images_per_class": 2,
}


# Overrides for the study answered on an ordinary 2-core CPU within 2 hours (results/cpu/):
# MobileNet V1 and the baseline CNN at the same 3x3 (α, ρ) points, V2 at one of them, every
# run trained on all 50,000 training images and tested on all 10,000 test images. Chosen by
# measurement (benchmarks/results/cpu-2core-2026-12-02.md): one pass over the grid's 19 runs
# takes about 90 minutes on 2 cores (the baseline's α = 1 row is over half of it), so the
# budget allows one epoch; in one epoch batch 128 learns more than 256 at the same speed.
CPU_OVERRIDES: dict[str, Any] = {
    "grid.sweep.widths": [0.25, 0.5, 1.0],
    "grid.sweep.resolutions": [0.5, 0.75, 1.0],
    "grid.reference.widths": [1.0],
    "grid.reference.resolutions": [0.5],
    "train.device": "cpu",
    "train.epochs": 1,
    "train.batch_size": 128,
    "train.lr": 0.2,  # the quick profile's rate per image (0.1 at batch 64)
    "train.warmup_epochs": 0.2,
    "train.train_subset": 0,
    "train.test_subset": 0,
}

PROFILE_OVERRIDES: dict[str, dict[str, Any]] = {
    "quick": QUICK_OVERRIDES,
    "cpu": CPU_OVERRIDES,
    "full": {},  # params.yaml as committed
}
PROFILES = tuple(PROFILE_OVERRIDES)


def override_args(overrides: Mapping[str, Any]) -> list[str]:
    """`-S key=value` pairs, values written as YAML/JSON literals (lists stay lists)."""
    args: list[str] = []
    for key, value in overrides.items():
        literal = value if isinstance(value, str) else json.dumps(value)
        args += ["-S", f"{key}={literal}"]
    return args


def profile_overrides(profile: str, data: str | None) -> dict[str, Any]:
    """The `-S` overrides of ``profile`` (one of :data:`PROFILES`), with an optional data
    source."""
    if profile not in PROFILES:
        raise StudyError(f"profile is {profile!r}; allowed: {', '.join(PROFILES)}")
    overrides = dict(PROFILE_OVERRIDES[profile])
    if data:
        overrides["data.source"] = data
    return overrides


def pipeline_command(profile: str, data: str | None) -> list[str]:
    """The DVC command that runs ``profile``, with an optional data source."""
    overrides = profile_overrides(profile, data)
    if not overrides:
        return ["dvc", "repro"]
    return ["dvc", "exp", "run", *override_args(overrides)]


def with_overrides(params: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with dotted-key ``overrides`` set, as `dvc exp run -S` would write them."""
    out = copy.deepcopy(dict(params))
    for dotted, value in overrides.items():
        node = out
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def shard_stages(
    params: Mapping[str, Any], overrides: Mapping[str, Any], index: int, count: int
) -> list[str]:
    """The training stages of shard ``index`` of ``count``, for the grid the profile trains."""
    grid = Grid.from_params(with_overrides(params, overrides))
    return [run.stage for run in shard(grid.runs, index, count)]


def shard_name(index: int, count: int) -> str:
    """``shard-1-of-2-20261129T0120`` (UTC): unique, so a shard can be run again."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"shard-{index}-of-{count}-{stamp}"


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
    """All ``count`` shards as queued experiments and ``count`` queue workers to run them: the
    shards' names, and the commands."""
    overrides = profile_overrides(profile, data)
    names = [shard_name(i, count) for i in range(1, count + 1)]
    queued = [
        ["dvc", "exp", "run", "--queue", "-n", name, *override_args(overrides),
         *shard_stages(params, overrides, i, count)]
        for i, name in enumerate(names, start=1)
    ]  # fmt: skip
    start = ["dvc", "queue", "start", "--jobs", str(count)]
    if "OMP_NUM_THREADS" not in os.environ:
        # The workers' stages inherit this: N trainers with every core each would fight over
        # the cores (a CPU run) rather than share them.
        start = ["env", f"OMP_NUM_THREADS={threads_per_worker(count)}", *start]
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


def run_commands(commands: Sequence[Sequence[str]]) -> int:
    for command in commands:
        print("+", shlex.join(command), flush=True)
        status = subprocess.run(command).returncode
        if status != 0:
            return status
    return 0


RUN_LOG_DIR = Path("logs")


def run_log(profile: str, root: str | Path = ".") -> Path:
    """Where a profile's attempts are recorded, one JSON line each (git-ignored)."""
    return Path(root) / RUN_LOG_DIR / f"{profile}-runs.jsonl"


def head_commit() -> str:
    """The commit checked out here (the code a run ran), or "unknown" outside git."""
    found = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
    return found.stdout.strip() if found.returncode == 0 else "unknown"


def timed_run(
    profile: str, commands: Sequence[Sequence[str]], params: Mapping[str, Any] | None = None
) -> int:
    """Run ``commands`` and append the attempt (start, end, wall time, status, commit) to
    :func:`run_log`: an interrupted run resumed later is two attempts of the same commit.
    With ``params`` (the profile's), a line per finished training run and a progress line with
    an ETA are printed while the commands run (mobilenet_study.status)."""
    started = datetime.datetime.now(datetime.timezone.utc)
    clock = time.perf_counter()
    monitor = Monitor(params) if params is not None else None
    if monitor is not None:
        monitor.start()
    try:
        status = run_commands(commands)
    finally:
        if monitor is not None:
            monitor.stop()
    attempt = {
        "started": started.isoformat(timespec="seconds"),
        "ended": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "wall_s": round(time.perf_counter() - clock, 1),
        "status": status,
        "commit": head_commit(),
        "commands": [shlex.join(command) for command in commands],
    }
    log = run_log(profile)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as file:
        file.write(json.dumps(attempt) + "\n")
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=(*PROFILES, "shard", "assemble", "shards"))
    parser.add_argument("shard", nargs="?", help="shard: i/N (the i-th of N); shards: N")
    parser.add_argument("--profile", choices=PROFILES, default="full", help="for the shards")
    parser.add_argument("--data", help="CIFAR-10 source: URL, archive, or image-folder mirror")
    args = parser.parse_args(argv)
    try:
        if args.command in PROFILES:
            commands = [pipeline_command(args.command, args.data)]
        elif args.command == "shard":
            index, count = parse_shard(args.shard)
            commands = shard_commands(load_params(), args.profile, args.data, index, count)
            remote_check()
        elif args.command == "assemble":
            commands = assemble_commands(args.profile, args.data)
        else:
            _, count = parse_shard(f"1/{args.shard}")
            # Queued experiments run in a copy of the repository under .dvc/tmp/exps, where a
            # path relative to this repository would point elsewhere.
            data = local_absolute(args.data)
            names, commands = queue_commands(load_params(), args.profile, data, count)
            args.data = data
    except StudyError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    is_profile = args.command in PROFILES
    if is_profile:
        params = with_overrides(load_params(), profile_overrides(args.command, args.data))
        status = timed_run(args.command, commands, params)
    else:
        status = run_commands(commands)
    if status == 0 and args.command == "shards":
        print(f"waiting for {', '.join(names)} (`dvc queue status`)", flush=True)
        failed = wait_for_queue(names)
        if failed:
            shown = ", ".join(failed)
            print(f"error: shards {shown} failed; see `dvc queue logs <name>`", file=sys.stderr)
            return 1
        status = run_commands([pipeline_command(args.profile, args.data)])
    if status == 0 and args.command != "shard":
        print(
            "\nResults: metrics/ (dvc metrics show), plots/ (dvc plots show), reports/.\n"
            "The run's params are in params.yaml: `dvc params diff` compares them with HEAD."
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
