"""Scaling out with DVC's own machinery: deterministic shards of the grid, pushed with the
run-cache to a shared remote from two clones ("machines") and assembled in a third, which
trains nothing; and the data's identity is its content, not its path."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from mobilenet_study import profiles, shards
from mobilenet_study.grid import Grid, GridPoint, Run
from mobilenet_study.params import StudyError, load_params
from mobilenet_study.shards import parse_shard, run_work, shard, split

from .conftest import REPO_ROOT, PipelineRepo, make_pipeline_repo
from .test_train_stage import TINY_GRID, write_image_folder


@pytest.fixture(scope="module")
def full_grid() -> Grid:
    return Grid.from_params(load_params(REPO_ROOT / "params.yaml"))


def test_shards_cover_the_grid_once_and_balance_the_work(full_grid: Grid) -> None:
    runs = full_grid.runs
    for count in (1, 2, 3, 8):
        shards = split(runs, count)
        names = [run.name for part in shards for run in part]
        assert sorted(names) == sorted(run.name for run in runs)  # each run exactly once
        loads = [sum(run_work(run) for run in part) for part in shards]
        # Largest first to the least loaded: no shard exceeds the mean by more than the
        # largest run (the baseline at α = ρ = 1).
        assert max(loads) - sum(loads) / count <= max(run_work(run) for run in runs)
        # Each shard lists its runs in grid order.
        order = [run.name for run in runs]
        assert all(
            [order.index(r.name) for r in part] == sorted(order.index(r.name) for r in part)
            for part in shards
        )
    two = split(runs, 2)
    assert abs(sum(map(run_work, two[0])) / sum(map(run_work, two[1])) - 1) < 0.05
    assert shard(runs, 2, 2) == two[1]


def test_a_run_is_sharded_by_its_work() -> None:
    small = Run(GridPoint("mobilenet_v1", 0.25, 0.5), 0)
    large = Run(GridPoint("baseline", 1.0, 1.0), 0)
    assert run_work(large) // run_work(small) == 475  # 397.3 M against 0.83 M MACs
    assert split([small, large, small], 2)[0] == [large]


def test_split_deals_largest_first_to_the_least_loaded_shard(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """By hand, work [2, 3, 2, 3, 2] into 2 shards. Largest first (ties in grid order):
    r2 → shard 1 (loads 3, 0); r4 → shard 2 (3, 3); r1 → tie, shard 1 (5, 3); r3 → shard 2
    (5, 5); r5 → tie, shard 1 (7, 5). In grid order: [r1, r2, r5], [r3, r4]."""
    r1, r2, r3, r4, r5 = (Run(GridPoint("mobilenet_v1", 0.25, 0.5), seed) for seed in range(5))
    work = {r1.name: 2, r2.name: 3, r3.name: 2, r4.name: 3, r5.name: 2}
    # split looks run_work up in its own module: patch it there.
    monkeypatch.setattr("mobilenet_study.shards.run_work", lambda run: work[run.name])
    assert split([r1, r2, r3, r4, r5], 2) == [[r1, r2, r5], [r3, r4]]


@pytest.mark.parametrize("text", ["", "0/2", "3/2", "1/0", "a/b", "1"])
def test_bad_shard_is_refused(text: str) -> None:
    with pytest.raises(StudyError, match=r"expected i/N with 1 <= i <= N"):
        parse_shard(text)
    assert parse_shard(" 2 / 4 ") == (2, 4)


def test_shard_commands_train_one_experiment_then_push_the_run_cache(full_grid: Grid) -> None:
    params = load_params(REPO_ROOT / "params.yaml")
    run, push = shards.shard_commands(params, "quick", "/data/mirror", 1, 2)
    assert run[:4] == ["dvc", "exp", "run", "-n"] and run[4].startswith("shard-1-of-2-")
    epochs = profiles.QUICK_OVERRIDES["train.epochs"]
    assert "data.source=/data/mirror" in run and f"train.epochs={epochs}" in run
    stages = [arg for arg in run if "@" in arg]
    trains = ("train@", "train_twin@", "train_reference@")
    assert stages and all(s.startswith(trains) for s in stages)
    assert push == ["dvc", "push", "--run-cache"]
    # The quick profile's grid, not the committed one: both shards together are all its runs.
    other = shards.shard_commands(params, "quick", None, 2, 2)[0]
    quick = Grid.from_params(profiles.with_overrides(params, profiles.QUICK_OVERRIDES))
    both = stages + [arg for arg in other if "@" in arg]
    assert sorted(both) == sorted(run.stage for run in quick.runs)
    with pytest.raises(StudyError, match="shard 10/10 has no runs"):
        shards.shard_commands(params, "quick", None, 10, 10)  # 9 quick runs


def test_assemble_and_queue_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    pull, repro = shards.assemble_commands("full", None)
    assert pull == ["dvc", "pull", "--run-cache", "--allow-missing"]
    assert repro == ["dvc", "repro", "--pull"]
    params = load_params(REPO_ROOT / "params.yaml")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(5)), raising=False)
    names, commands = shards.queue_commands(params, "quick", None, 2)
    assert [c[:4] for c in commands[:2]] == [["dvc", "exp", "run", "--queue"]] * 2
    assert [c[c.index("-n") + 1] for c in commands[:2]] == names
    # The workers share the 5 CPUs: each gets its whole part (5 // 2, 5 // 3), at least one.
    assert shards.threads_per_worker(2) == 2
    assert shards.threads_per_worker(3) == 1
    assert commands[-1] == [
        "env",
        "OMP_NUM_THREADS=2",
        "dvc",
        "queue",
        "start",
        "--jobs",
        "2",
    ]
    assert shards.threads_per_worker(10_000) == 1
    # A thread count the user chose is left alone.
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    _, commands = shards.queue_commands(params, "quick", None, 2)
    assert commands[-1] == ["dvc", "queue", "start", "--jobs", "2"]
    # The full profile (trainers on a GPU): one more experiment runs the stages that need no
    # trained model meanwhile, with a worker of its own.
    names, commands = shards.queue_commands(params, "full", None, 2)
    assert len(names) == 3 and names[2].startswith("cpu-stages-")
    assert commands[2][-len(shards.CPU_STAGES) :] == list(shards.CPU_STAGES)
    assert not any(stage.startswith("train") for stage in commands[2][5:])
    assert commands[-1] == ["dvc", "queue", "start", "--jobs", "3"]


def clone(origin: PipelineRepo, path: Path) -> PipelineRepo:
    origin.run("git", "clone", "-q", str(origin.path), str(path))
    repo = PipelineRepo(path)
    repo.run("git", "config", "user.email", "tests@example.invalid")
    repo.run("git", "config", "user.name", "tests")
    return repo


def trained(output: str) -> list[str]:
    """The stages a `dvc repro` / `dvc exp run` log says it ran."""
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")]


@pytest.mark.slow
def test_two_machines_train_shards_and_a_third_assembles_without_training(
    tmp_path: Path,
) -> None:
    mirror = write_image_folder(tmp_path / "mirror", {"train": 20, "test": 10})
    origin = make_pipeline_repo(tmp_path / "origin")
    origin.set_params(
        {
            **TINY_GRID,
            "grid.reference.models": ["baseline"],  # V2's ONNX export alone takes ~16 s here
            "data.source": str(mirror),
            "cost.warmup": 0,
            "cost.repeats": 3,
            "gradcam.runs": ["baseline-0.25-0.5-0"],
            "gradcam.images_per_class": 1,
        }
    )
    # Without a default remote, a shard says how to set one before any work.
    refused = origin.run("python", "-m", "mobilenet_study.commands", "shard", "1/2", check=False)
    assert refused.returncode == 2 and "dvc remote add -d" in refused.stderr
    assert not (origin.path / "metrics/train").exists()
    origin.dvc("remote", "add", "-d", "shared", str(tmp_path / "remote"))
    origin.commit("tiny grid, one shared remote")
    machines = {name: clone(origin, tmp_path / name) for name in ("a", "b", "c")}

    ran: dict[str, list[str]] = {}
    for index, name in enumerate(("a", "b"), start=1):
        log = machines[name].run("python", "-m", "mobilenet_study.commands", "shard", f"{index}/2")
        ran[name] = [stage for stage in trained(log.stdout) if stage.startswith("train")]
    grid = Grid.from_params(origin.params())
    runs = [run.name for run in grid.runs]
    assert sorted(ran["a"] + ran["b"]) == sorted(run.stage for run in grid.runs)
    assert ran["a"] and ran["b"]  # two shards, each with work

    c = machines["c"]
    log = c.run("python", "-m", "mobilenet_study.commands", "assemble").stdout
    assert not [stage for stage in trained(log) if stage.startswith("train")], log
    for run in runs:
        assert f"train@{run}' is cached" in log or f"train_reference@{run}' is cached" in log
    assert {"aggregate", "cost", "deploy"} <= set(trained(log))
    # The shards ran `download`; its run-cache entry restores it here.
    assert "download" not in trained(log), log
    study = json.loads((c.path / "metrics/study.json").read_text())
    assert study["study"]["runs"] == len(runs)
    for run in runs:
        owner = machines["a"] if any(run in stage for stage in ran["a"]) else machines["b"]
        theirs = (owner.path / f"metrics/train/{run}.json").read_text()
        assert (c.path / f"metrics/train/{run}.json").read_text() == theirs
        assert study[run]["acc"] == round(json.loads(theirs)["test_accuracy"], 4)
        model = f"models/{run}/model.pt"
        assert (c.path / model).read_bytes() == (owner.path / model).read_bytes()
    assert (c.path / "plots/gradcam/baseline-0.25-0.5-0.png").is_file()

    # The same pixels from another path are the same data: after `download` runs again, no
    # training or deployment stage is out of date (only the stages that name the source).
    copy = shutil.copytree(mirror, tmp_path / "copy-of-mirror")
    c.set_params({"data.source": str(copy)})
    assert trained(c.dvc("repro", "download").stdout) == ["download"]
    stale = [line for line in c.dvc("status").stdout.splitlines() if line.endswith(":")]
    assert stale and all(not line.startswith(("train", "deploy")) for line in stale), stale


@pytest.mark.slow
def test_queue_states_come_from_dvcs_queue(
    pipeline_repo: PipelineRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A queued experiment (no worker started) is Queued by DVC's own API; a name DVC does not
    know is missing; `dvc queue status` prints the same state."""
    pipeline_repo.dvc("exp", "run", "--queue", "-n", "shard-x", "residual")
    monkeypatch.chdir(pipeline_repo.path)
    assert shards.queue_states(["shard-x", "shard-y"]) == {
        "shard-x": "Queued",
        "shard-y": "missing",
    }
    printed = pipeline_repo.dvc("queue", "status").stdout
    assert any("shard-x" in line and "Queued" in line for line in printed.splitlines())
    pipeline_repo.dvc("queue", "remove", "--all")
