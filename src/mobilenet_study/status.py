"""Where the grid's training stands, for a running or a stopped profile:

    python -m mobilenet_study.status        (make status)

reads params.yaml as the profile's `dvc exp run -S` left it, and for each training run of its
grid says whether it is done (its metrics file was written for this recipe), in progress (the
epoch and step of its progress file, and whether that file is still being updated) or still to
do; then how much work is left and, at the pace measured so far, how long it will take. The
same summary is printed as a progress line while a profile runs (:class:`Monitor`).

The time left is estimated from the pace measured so far: a run in progress finishes at its
own pace; a run still to do takes, per training image, ``scale * MACs ** power``, fitted by
least squares in log-log on the runs measured so far, times its model's factor (how that
model's measured runs sit against the fit). A power well below 1 is what these CPUs show: the
smallest models train far slower than their MACs say (per-layer overheads), the largest use
the cores best; the measured grid epochs fit about 0.45. Until two runs of different MACs are
measured, the estimate is unknown.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mobilenet_study.grid import Grid, Run
from mobilenet_study.layout import RunPaths
from mobilenet_study.models.counting import analytic_cost
from mobilenet_study.params import StudyError, load_params
from mobilenet_study.training.progress import RunProgress, read_progress
from mobilenet_study.training.recipe import TrainParams, recipe_fingerprint

TRAIN_IMAGES = 50_000
TEST_IMAGES = 10_000
STALE_S = 120.0  # a progress file not rewritten for this long belongs to a stopped run


@dataclass(frozen=True)
class RunStatus:
    run: Run
    state: str  # done, running, stopped, to do
    macs: float  # per image, at the run's input size
    images: float  # training images over all its epochs
    fraction: float  # of its training done
    seconds: float  # spent on it so far (a finished run: its training time)
    progress: RunProgress | None
    accuracy: float | None  # test accuracy at the last epoch, when done

    @property
    def measured(self) -> bool:
        return self.fraction > 0 and self.seconds > 0

    @property
    def seconds_per_image(self) -> float:
        return self.seconds / (self.fraction * self.images)


@dataclass(frozen=True)
class PaceModel:
    """Seconds per training image: ``scale * MACs ** power * factor[model]``."""

    scale: float
    power: float
    factor: Mapping[str, float]

    def seconds_per_image(self, model: str, macs: float) -> float:
        return self.scale * macs**self.power * self.factor.get(model, 1.0)


def fit_pace(measured: Sequence[RunStatus]) -> PaceModel | None:
    """The pace model fitted on ``measured`` runs; None before two runs of different MACs."""
    x = np.log([r.macs for r in measured])
    y = np.log([r.seconds_per_image for r in measured])
    if len(set(x.tolist())) < 2:
        return None
    power, log_scale = np.polyfit(x, y, 1)
    power = float(np.clip(power, 0.0, 1.0))  # noise aside, time grows with MACs, at most as fast
    log_scale = float(np.mean(y - power * x))
    residuals: dict[str, list[float]] = {}
    for r, xi, yi in zip(measured, x, y, strict=True):
        residuals.setdefault(r.run.model, []).append(float(yi - log_scale - power * xi))
    factor = {m: float(np.exp(np.mean(v))) for m, v in residuals.items()}
    return PaceModel(float(np.exp(log_scale)), power, factor)


@dataclass(frozen=True)
class GridStatus:
    runs: tuple[RunStatus, ...]

    @property
    def seconds_spent(self) -> float:
        return sum(r.seconds for r in self.runs)

    def seconds_left(self) -> float | None:
        """The rest at the pace measured so far (see the module's docstring); None before two
        runs of different MACs were measured, or when every run is done."""
        pace = fit_pace([r for r in self.runs if r.measured])
        if pace is None:
            return 0.0 if all(r.state == "done" for r in self.runs) else None
        left = 0.0
        for r in self.runs:
            if r.state == "done":
                continue
            if r.measured:  # its own pace
                left += r.seconds / r.fraction * (1 - r.fraction)
            else:
                left += r.images * pace.seconds_per_image(r.run.model, r.macs)
        return left

    def count(self, state: str) -> int:
        return sum(r.state == state for r in self.runs)


def _train_images(config: TrainParams) -> int:
    pool = TRAIN_IMAGES - config.validation
    images = min(config.train_subset or pool, pool)
    return images // config.batch_size * config.batch_size


def run_status(run: Run, config: TrainParams, root: Path, now: float) -> RunStatus:
    paths = RunPaths.for_run(run.name, root)
    macs = float(analytic_cost(run.model, run.width, run.input_size).macs)
    images = float(_train_images(config) * config.epochs)
    metrics = _read_json(paths.metrics)
    if metrics is not None and metrics.get("recipe") == recipe_fingerprint(config):
        seconds = float(metrics.get("train_seconds", 0.0))
        accuracy = metrics.get("test_accuracy")
        return RunStatus(run, "done", macs, images, 1.0, seconds, None, accuracy)
    progress = read_progress(paths.progress)
    if progress is None:
        return RunStatus(run, "to do", macs, images, 0.0, 0.0, None, None)
    fresh = now - paths.progress.stat().st_mtime < STALE_S
    return RunStatus(
        run, "running" if fresh else "stopped", macs, images, progress.fraction,
        progress.elapsed_s, progress, None,
    )  # fmt: skip


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def grid_status(params: Mapping[str, Any], root: str | Path = ".") -> GridStatus:
    grid, config = Grid.from_params(params), TrainParams.from_params(params)
    now = time.time()
    return GridStatus(tuple(run_status(run, config, Path(root), now) for run in grid.runs))


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    return str(datetime.timedelta(seconds=round(seconds)))


def summary_line(status: GridStatus, elapsed: float | None = None) -> str:
    """``12/19 runs done, 1 running; elapsed 0:31:10; ETA 0:44:02 (59% of the time)``."""
    parts = [f"{status.count('done')}/{len(status.runs)} runs done"]
    for state in ("running", "stopped"):
        if status.count(state):
            parts[-1] += f", {status.count(state)} {state}"
    if elapsed is not None:
        parts.append(f"elapsed {clock(elapsed)}")
    left = status.seconds_left()
    if left is None:
        parts.append("ETA unknown until two runs of different sizes are measured")
    else:
        spent = status.seconds_spent
        share = 100 * spent / (spent + left) if spent + left > 0 else 100.0
        parts.append(f"ETA {clock(left)} at the pace so far ({share:.0f}% of the training time)")
    return "; ".join(parts)


def describe(status: GridStatus) -> list[str]:
    """One line per run, then the summary."""
    lines = []
    for r in status.runs:
        if r.state == "done":
            detail = f"test accuracy {r.accuracy:.4f}, {clock(r.seconds)}"
        elif r.progress is not None:
            p = r.progress
            detail = (
                f"epoch {p.epochs_done + 1}/{p.epochs}, step {p.step}/{p.steps_per_epoch}, "
                f"{clock(r.seconds)} so far, updated {p.updated}"
            )
        else:
            detail = ""
        lines.append(f"{r.state:8} {r.run.stage:40} {detail}".rstrip())
    return [*lines, summary_line(status)]


class Monitor(threading.Thread):
    """Prints a line per finished run and the summary line while a profile runs."""

    def __init__(
        self,
        params: Mapping[str, Any],
        every_s: float = 300.0,
        poll_s: float = 15.0,
        root: str | Path = ".",
    ) -> None:
        super().__init__(daemon=True)
        self.params, self.every_s, self.poll_s, self.root = params, every_s, poll_s, root
        self.stopped = threading.Event()
        self.start_time = time.monotonic()

    def run(self) -> None:
        done = {r.run.name for r in grid_status(self.params, self.root).runs if r.state == "done"}
        last_line = time.monotonic()
        while not self.stopped.wait(self.poll_s):
            try:
                status = grid_status(self.params, self.root)
            except StudyError:
                continue
            finished = [r for r in status.runs if r.state == "done" and r.run.name not in done]
            for r in finished:
                done.add(r.run.name)
                print(
                    f"[progress] finished {r.run.stage}: test accuracy {r.accuracy:.4f} "
                    f"in {clock(r.seconds)}",
                    flush=True,
                )
            if finished or time.monotonic() - last_line >= self.every_s:
                elapsed = time.monotonic() - self.start_time
                print(f"[progress] {summary_line(status, elapsed)}", flush=True)
                last_line = time.monotonic()

    def stop(self) -> None:
        self.stopped.set()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=".", help="the repository (default: here)")
    args = parser.parse_args(argv)
    try:
        status = grid_status(load_params(Path(args.root) / "params.yaml"), args.root)
    except StudyError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("\n".join(describe(status)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
