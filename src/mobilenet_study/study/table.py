"""The study's table: every trained run joined with its cost, one row per run.

Inputs are what the earlier stages wrote: each run's metrics, DVCLive curves and test
predictions (stages ``train``, ``train_twin`` and ``train_reference``), their deployments
(stage ``deploy``) and the cost stage's table, all where :mod:`mobilenet_study.layout` says.
The grid in params.yaml says which runs must be there; a missing one is a
:class:`StudyError` naming the run and the command that makes it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mobilenet_study.grid import GridPoint, Run
from mobilenet_study.layout import COST_TABLE, DEPLOYED, DeployedPaths, RunPaths
from mobilenet_study.models import MOBILENETS
from mobilenet_study.params import StudyError
from mobilenet_study.study import stats

# DVCLive writes one TSV per metric: columns `step` (the epoch, from 1) and the metric.
CURVE_METRICS = ("test_accuracy", "test_loss", "train_loss")

COLUMNS = (
    "run",
    "model",
    "width",
    "resolution",
    "seed",
    "input_size",
    "label",
    "params",
    "macs_analytic",
    "macs_measured",
    "params_norm",
    "macs_norm",
    "params_theory",
    "macs_theory",
    "latency_ms_per_image_cpu",
    "latency_ms_per_image_cpu_iqr",
    "latency_ms_per_image_gpu",
    "latency_ms_per_image_gpu_iqr",
    "latency_precision",
    "test_images",
    "test_correct",
    "test_accuracy",
    "test_accuracy_ci_low",
    "test_accuracy_ci_high",
    "seeds",
    "test_accuracy_seed_mean",
    "test_accuracy_seed_std",
    "best_test_accuracy",
    "test_loss",
    "epochs",
    "train_images",
    "train_seconds",
    "train_images_per_second",
    "device",
    "precision",
    "tta",
    "first_seed",
    "pareto_frontier",
    "model_frontier",
)


@dataclass(frozen=True)
class Predictions:
    """A run's test-set predictions, image by image (``plots/predictions/<run>.csv``)."""

    path: Path
    actual: np.ndarray  # class names, in test-set order
    predicted: np.ndarray

    @classmethod
    def read(cls, path: Path) -> Predictions:
        frame = read_predictions(path)
        return cls(path, frame["actual"].to_numpy(str), frame["predicted"].to_numpy(str))

    @property
    def correct(self) -> np.ndarray:
        return self.actual == self.predicted

    def frame(self) -> pd.DataFrame:
        """The predictions as their file holds them: columns actual, predicted."""
        return pd.DataFrame({"actual": self.actual, "predicted": self.predicted})


@dataclass(frozen=True)
class RunInputs:
    """One trained run, as its training and deployment stages wrote it."""

    run: Run
    metrics: dict[str, Any]
    curves: pd.DataFrame  # epoch, test_accuracy, test_loss, train_loss
    predictions: Predictions
    deployed: dict[str, Any] | None = None  # deployed/<run>/deploy.json
    int8: Predictions | None = None  # ONNX Runtime int8, the same test images


def _missing(path: Path, stage: str) -> StudyError:
    return StudyError(
        f"{path} does not exist: the run is in the grid but not trained; run `dvc repro {stage}`"
    )


def read_curves(curves_dir: Path, stage: str) -> pd.DataFrame:
    """The run's per-epoch curves, one row per epoch (``epoch`` counts from 1)."""
    merged: pd.DataFrame | None = None
    for metric in CURVE_METRICS:
        path = curves_dir / "plots" / "metrics" / f"{metric}.tsv"
        if not path.exists():
            raise _missing(path, stage)
        frame = pd.read_csv(path, sep="\t")
        if list(frame.columns) != ["step", metric]:
            raise StudyError(f"{path}: expected columns step, {metric}; rerun `dvc repro {stage}`")
        merged = frame if merged is None else merged.merge(frame, on="step", how="outer")
    assert merged is not None
    merged = merged.sort_values("step").reset_index(drop=True)
    merged.insert(0, "epoch", merged.pop("step"))
    return merged


def read_run(run: Run, root: str | Path = ".") -> RunInputs:
    """Read one run's metrics, curves and predictions; anything missing names its stage."""
    stage = run.stage
    paths = RunPaths.for_run(run.name, root)
    path = paths.metrics
    if not path.exists():
        raise _missing(path, stage)
    try:
        metrics = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise StudyError(f"{path} is not valid JSON ({err}): rerun `dvc repro {stage}`") from None
    # A file from another run under this name would silently mislabel the table.
    described = tuple(metrics.get(key) for key in ("model", "width", "resolution", "seed"))
    if described != (run.model, run.width, run.resolution, run.seed):
        raise StudyError(f"{path} describes {described}, not {run.name}: rerun `dvc repro {stage}`")
    if not paths.predictions.exists():
        raise _missing(paths.predictions, stage)
    predictions = Predictions.read(paths.predictions)
    deployed, int8 = read_deployment(run, root)
    return RunInputs(run, metrics, read_curves(paths.curves, stage), predictions, deployed, int8)


def read_deployment(run: Run, root: str | Path = ".") -> tuple[dict[str, Any], Predictions]:
    """The deploy stage's summary and int8 predictions for ``run``; missing names its stage."""
    paths = DeployedPaths.for_run(run.name, Path(root) / DEPLOYED)
    for path in (paths.summary, paths.predictions):
        if not path.exists():
            raise StudyError(
                f"{path} does not exist: the run is trained but not deployed; run "
                "`dvc repro deploy`"
            )
    try:
        summary = json.loads(paths.summary.read_text())
    except json.JSONDecodeError as err:
        raise StudyError(
            f"{paths.summary} is not valid JSON ({err}): rerun `dvc repro deploy`"
        ) from None
    return summary, Predictions.read(paths.predictions)


def read_runs(runs: Sequence[Run], root: str | Path = ".") -> list[RunInputs]:
    """Every run of the grid, in grid order."""
    return [read_run(run, root) for run in runs]


class PairedTests:
    """Paired comparisons between runs by name, from their per-image test predictions."""

    def __init__(self, predictions: Mapping[str, Predictions]) -> None:
        self._predictions = dict(predictions)
        self._done: dict[tuple[str, str], stats.PairedComparison] = {}

    @classmethod
    def of(cls, runs: Sequence[RunInputs]) -> PairedTests:
        """Every run's predictions by its name, and its int8 deployment's by ``<run>.int8``."""
        predictions = {r.run.name: r.predictions for r in runs}
        predictions |= {f"{r.run.name}.int8": r.int8 for r in runs if r.int8 is not None}
        return cls(predictions)

    def compare(self, run_a: str, run_b: str) -> stats.PairedComparison:
        """Run B against run A: B's accuracy minus A's, with its interval and p-value."""
        if (run_a, run_b) not in self._done:
            a, b = self._predictions[run_a], self._predictions[run_b]
            if not np.array_equal(a.actual, b.actual):
                raise StudyError(
                    f"{a.path} and {b.path} hold different test images (count or order), so "
                    "the runs cannot be compared image by image: rerun both with the same "
                    "train.test_subset and data"
                )
            self._done[run_a, run_b] = stats.paired_comparison(a.correct, b.correct)
        return self._done[run_a, run_b]


def read_cost_table(path: Path = COST_TABLE) -> pd.DataFrame:
    """The cost stage's table (``plots/cost/cost.csv``, or ``scaling.csv`` beside it)."""
    if not path.exists():
        raise StudyError(f"{path} does not exist: run `dvc repro cost`")
    return pd.read_csv(path)


def pareto_frontier(costs: Sequence[float], values: Sequence[float]) -> list[bool]:
    """Which points no other point dominates (costs no more, is worth at least as much, and
    is strictly better in one of the two): the best accuracy available at each cost."""
    flags = []
    for i, (cost_i, value_i) in enumerate(zip(costs, values, strict=True)):
        dominated = any(
            cost_j <= cost_i and value_j >= value_i and (cost_j < cost_i or value_j > value_i)
            for j, (cost_j, value_j) in enumerate(zip(costs, values, strict=True))
            if j != i
        )
        flags.append(not dominated)
    return flags


def point_label(width: float, resolution: float) -> str:
    return f"α {width:g} ρ {resolution:g}"


def _cost_row(cost_table: pd.DataFrame, point: GridPoint) -> pd.Series:
    rows = cost_table[
        (cost_table["model"] == point.model)
        & np.isclose(cost_table["width"], point.width)
        & np.isclose(cost_table["resolution"], point.resolution)
    ]
    if rows.empty:
        raise StudyError(f"{COST_TABLE} has no row for {point.name}: run `dvc repro cost`")
    return rows.iloc[0]


def _run_row(inputs: RunInputs, cost: pd.Series) -> dict[str, Any]:
    run, m = inputs.run, inputs.metrics
    # The cost stage times on one device; its column is the hook for GPU latency.
    on_gpu = str(cost["device"]) == "cuda"
    latency = float(cost["latency_ms_per_image_median"])
    iqr = float(cost["latency_ms_per_image_iqr"])
    correct = inputs.predictions.correct
    interval = stats.accuracy_interval(int(correct.sum()), len(correct))
    return {
        "run": run.name,
        "model": run.model,
        "width": run.width,
        "resolution": run.resolution,
        "seed": run.seed,
        "input_size": run.input_size,
        "label": point_label(run.width, run.resolution),
        "params": int(m["params"]),
        "macs_analytic": int(cost["macs_analytic"]),
        "macs_measured": int(m["macs"]),
        "params_norm": float(cost["params_norm"]),
        "macs_norm": float(cost["macs_norm"]),
        "params_theory": float(cost["params_theory"]),
        "macs_theory": float(cost["macs_theory"]),
        "latency_ms_per_image_cpu": math.nan if on_gpu else latency,
        "latency_ms_per_image_cpu_iqr": math.nan if on_gpu else iqr,
        "latency_ms_per_image_gpu": latency if on_gpu else math.nan,
        "latency_ms_per_image_gpu_iqr": iqr if on_gpu else math.nan,
        # The cost stage times the CPU in fp32 and CUDA in the training precision there.
        "latency_precision": str(cost.get("precision", "fp32")),
        "test_images": len(correct),
        "test_correct": int(correct.sum()),
        # From the predictions, so that the interval and the paired tests see the same count.
        "test_accuracy": float(correct.mean()),
        "test_accuracy_ci_low": interval.low,
        "test_accuracy_ci_high": interval.high,
        "best_test_accuracy": float(m["best_test_accuracy"]),
        "test_loss": float(m["test_loss"]),
        "epochs": int(m["epochs"]),
        "train_images": int(m["train_images"]),
        "train_seconds": float(m["train_seconds"]),
        "train_images_per_second": float(m["train_images_per_second"]),
        "device": str(m["device"]),
        # Runs trained before these fields existed were fp32 without test-time augmentation.
        "precision": str(m.get("precision", "fp32")),
        "tta": str(m.get("tta", "none")),
    }


def study_table(
    runs: Sequence[RunInputs], cost_table: pd.DataFrame, first_seed: int
) -> pd.DataFrame:
    """One row per run: what it is, what it costs (cost stage) and how well it did (training),
    its accuracy's 95% interval, and its point's mean and std over seeds.

    The Pareto flags are computed over the runs of ``first_seed`` (one run per point, the runs
    the paired tests compare): ``pareto_frontier`` across all models, ``model_frontier`` within
    each model's family.
    """
    rows = [_run_row(inputs, _cost_row(cost_table, inputs.run.point)) for inputs in runs]
    table = pd.DataFrame(rows, columns=[c for c in COLUMNS if c in rows[0]])
    point = table.groupby(["model", "width", "resolution"], sort=False)["test_accuracy"]
    table["seeds"] = point.transform("size").astype(int)
    table["test_accuracy_seed_mean"] = point.transform("mean")
    table["test_accuracy_seed_std"] = point.transform(lambda a: stats.seed_spread(a)[1])
    table["first_seed"] = table["seed"] == first_seed
    table["pareto_frontier"] = False
    table["model_frontier"] = False
    first = table[table["first_seed"]]
    table.loc[first.index, "pareto_frontier"] = pareto_frontier(
        first["macs_measured"].tolist(), first["test_accuracy"].tolist()
    )
    table.loc[first.index, "model_frontier"] = frontier_within(first, "model", "macs_measured")
    return table[list(COLUMNS)]


def frontier_within(rows: pd.DataFrame, group: str, cost: str) -> pd.Series:
    """For each value of ``group``, which of its rows are on its own Pareto frontier of test
    accuracy against ``cost``."""
    flags = pd.Series(False, index=rows.index)
    for _, members in rows.groupby(group, sort=False):
        flags[members.index] = pareto_frontier(
            members[cost].tolist(), members["test_accuracy"].tolist()
        )
    return flags


def first_seed_runs(table: pd.DataFrame) -> pd.DataFrame:
    """One row per grid point: the run of the first seed (the one paired tests compare)."""
    return table[table["first_seed"]]


def study_metrics(table: pd.DataFrame) -> dict[str, Any]:
    """metrics/study.json: what people compare across experiments, and nothing more.

    Per run (keyed by its name, as in ``train@<run>``): ``acc`` (test accuracy), ``acc_ci95``
    (half the width of its Wilson 95% interval: acc ± this), ``macs`` and ``params``. Under
    ``study``: the number of runs, the most accurate run of the first seed and its accuracy, and
    how many first-seed runs are on the Pareto frontier. Everything else (bounds, latency, loss,
    timings) is in plots/study/study.csv and the report.
    """
    first = first_seed_runs(table)
    best = first.loc[first["test_accuracy"].idxmax()]
    out: dict[str, Any] = {
        "study": {
            "runs": len(table),
            "best_run": str(best["run"]),
            "best_acc": round(float(best["test_accuracy"]), 4),
            "frontier": int(first["pareto_frontier"].sum()),
        }
    }
    for row in table.to_dict("records"):
        half = (row["test_accuracy_ci_high"] - row["test_accuracy_ci_low"]) / 2
        out[row["run"]] = {
            "acc": round(float(row["test_accuracy"]), 4),
            "acc_ci95": round(float(half), 4),
            "macs": int(row["macs_measured"]),
            "params": int(row["params"]),
        }
    return out


def curves_table(runs: Sequence[RunInputs]) -> pd.DataFrame:
    """Long format for DVC's plots: run, epoch, test_accuracy with its 95% interval (from the
    run's test-set size), test_loss, train_loss."""
    frames = []
    for inputs in runs:
        frame = inputs.curves.assign(run=inputs.run.name)
        n = len(inputs.predictions.actual)
        intervals = [stats.accuracy_interval(round(acc * n), n) for acc in frame["test_accuracy"]]
        frame["test_accuracy_ci_low"] = [i.low for i in intervals]
        frame["test_accuracy_ci_high"] = [i.high for i in intervals]
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    return table[["run", "epoch", *CURVE_METRICS, "test_accuracy_ci_low", "test_accuracy_ci_high"]]


def best_mobilenet(table: pd.DataFrame) -> pd.Series:
    """The most accurate MobileNet run of the first seed (the most accurate run if no MobileNet
    was trained)."""
    table = first_seed_runs(table)
    candidates = table[table["model"].isin(MOBILENETS)]
    if candidates.empty:
        candidates = table
    return candidates.loc[candidates["test_accuracy"].idxmax()]


def read_predictions(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    if list(frame.columns) != ["actual", "predicted"]:
        raise StudyError(f"{path}: expected columns actual, predicted")
    return frame


def confusion_counts(predictions: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """Counts, actual classes as rows and predicted as columns, in ``classes`` order."""
    counts = pd.crosstab(predictions["actual"], predictions["predicted"])
    return counts.reindex(index=list(classes), columns=list(classes), fill_value=0)
