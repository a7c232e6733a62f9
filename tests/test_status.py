"""`make status`: which runs of the grid are done, in progress or to do, and the time left."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from mobilenet_study.layout import RunPaths
from mobilenet_study.params import load_params
from mobilenet_study.profiles import with_overrides
from mobilenet_study.status import Monitor, fit_pace, grid_status, summary_line
from mobilenet_study.training.recipe import TrainParams, recipe_fingerprint

from .conftest import REPO_ROOT

GRID = {
    "grid.sweep.models": ["mobilenet_v1"],
    "grid.sweep.widths": [0.25, 0.5],
    "grid.sweep.resolutions": [1.0],
    "grid.reference.widths": [0.5],
    "grid.reference.resolutions": [0.5],
    "train.epochs": 4,
    "train.warmup_epochs": 1,
    "train.batch_size": 100,
}


@pytest.fixture
def params() -> dict:
    return with_overrides(load_params(REPO_ROOT / "params.yaml"), GRID)


def _progress(path: Path, epochs_done: int, step: int, elapsed: float, age_s: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = {
        "epochs_done": epochs_done, "step": step, "steps_per_epoch": 500, "epochs": 4,
        "elapsed_s": elapsed, "step_seconds": elapsed, "updated": "2026-12-03T00:00:00+00:00",
    }  # fmt: skip
    path.write_text(json.dumps(fields))
    then = time.time() - age_s
    os.utime(path, (then, then))


def test_done_running_stopped_and_to_do(tmp_path: Path, params: dict) -> None:
    config = TrainParams.from_params(params)
    done = RunPaths.for_run("mobilenet_v1-0.25-1.0-0", tmp_path)
    done.metrics.parent.mkdir(parents=True)
    done.metrics.write_text(
        json.dumps(
            {"recipe": recipe_fingerprint(config), "train_seconds": 400.0, "test_accuracy": 0.5}
        )
    )
    stale = RunPaths.for_run("mobilenet_v1-0.5-1.0-0", tmp_path)
    stale.metrics.write_text(json.dumps({"recipe": "another recipe", "test_accuracy": 0.4}))
    _progress(stale.progress, 1, 250, elapsed=300.0, age_s=3600)  # stopped an hour ago
    states = {r.run.name: r for r in grid_status(params, tmp_path).runs}
    assert states["mobilenet_v1-0.25-1.0-0"].state == "done"
    stopped = states["mobilenet_v1-0.5-1.0-0"]
    assert stopped.state == "stopped" and stopped.fraction == pytest.approx(1.5 / 4)
    assert states["mobilenet_v2-0.5-0.5-0"].state == "to do"
    assert len(states) == 3

    _progress(stale.progress, 1, 250, elapsed=300.0, age_s=0)
    status = grid_status(params, tmp_path)
    assert {r.run.name: r.state for r in status.runs}["mobilenet_v1-0.5-1.0-0"] == "running"
    line = summary_line(status, elapsed=700.0)
    assert line.startswith("1/3 runs done, 1 running;") and "elapsed 0:11:40" in line


def test_the_eta_follows_a_power_of_the_macs_fitted_on_the_runs_so_far(
    tmp_path: Path, params: dict
) -> None:
    # Runs that train at exactly 2 µs x MACs ** 0.45 seconds per image: one done, one 3/8
    # through (1.5 of 4 epochs); V2, not started, must then take its images at that pace.
    config = TrainParams.from_params(params)
    images = 50_000 // 100 * 100 * 4
    runs = {r.run.name: r for r in grid_status(params, tmp_path).runs}

    def seconds(name: str, fraction: float) -> float:
        return fraction * images * 2e-6 * runs[name].macs ** 0.45

    done = RunPaths.for_run("mobilenet_v1-0.25-1.0-0", tmp_path)
    done.metrics.parent.mkdir(parents=True)
    fields = {"recipe": recipe_fingerprint(config), "test_accuracy": 0.5}
    done.metrics.write_text(
        json.dumps({**fields, "train_seconds": seconds("mobilenet_v1-0.25-1.0-0", 1.0)})
    )
    running = RunPaths.for_run("mobilenet_v1-0.5-1.0-0", tmp_path)
    spent = seconds("mobilenet_v1-0.5-1.0-0", 1.5 / 4)
    _progress(running.progress, 1, 250, elapsed=spent, age_s=0)
    status = grid_status(params, tmp_path)
    v2 = seconds("mobilenet_v2-0.5-0.5-0", 1.0)
    running_left = spent / (1.5 / 4) * (1 - 1.5 / 4)  # at its own pace
    assert status.seconds_left() == pytest.approx(running_left + v2, rel=1e-6)
    share = 100 * status.seconds_spent / (status.seconds_spent + running_left + v2)
    assert f"({share:.0f}% of the training time)" in summary_line(status)
    # The fit found the scale and the power it was given.
    pace = fit_pace([r for r in status.runs if r.measured])
    assert pace is not None and pace.scale == pytest.approx(2e-6)
    assert pace.power == pytest.approx(0.45) and pace.factor["mobilenet_v1"] == pytest.approx(1)


def test_nothing_measured_has_no_eta(tmp_path: Path, params: dict) -> None:
    status = grid_status(params, tmp_path)
    assert status.seconds_left() is None and "ETA unknown" in summary_line(status)
    assert summary_line(status).startswith("0/3 runs done")


def test_monitor_prints_a_line_per_finished_run_and_the_summary(
    tmp_path: Path, params: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    monitor = Monitor(params, every_s=3600, poll_s=0.05, root=tmp_path)
    monitor.start()
    time.sleep(0.2)
    paths = RunPaths.for_run("mobilenet_v2-0.5-0.5-0", tmp_path)
    paths.metrics.parent.mkdir(parents=True)
    fields = {
        "recipe": recipe_fingerprint(TrainParams.from_params(params)),
        "train_seconds": 65.0,
        "test_accuracy": 0.75,
    }
    paths.metrics.write_text(json.dumps(fields))
    time.sleep(0.5)
    monitor.stop()
    monitor.join()
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        "[progress] finished train_reference@mobilenet_v2-0.5-0.5-0: test accuracy 0.7500 "
        "in 0:01:05"
    )
    assert out[1].startswith("[progress] 1/3 runs done;") and "ETA" in out[1]
    assert len(out) == 2
