"""The study's table: every trained run joined with its cost, one row per run.

Inputs are what the earlier stages wrote: each run's metrics, DVCLive curves and test
predictions (stages ``train`` and ``train_reference``, paths in :class:`train.RunPaths`), and
``plots/cost/cost.csv`` (stage ``cost``). The grid in params.yaml says which runs must be
there; a missing one is a :class:`StudyError` naming the run and the command that makes it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mobilenet_study.cost import metric_key
from mobilenet_study.grid import RunPoint
from mobilenet_study.params import StudyError
from mobilenet_study.train import RunPaths

COST_TABLE = Path("plots/cost/cost.csv")
# DVCLive writes one TSV per metric: columns `step` (the epoch, from 1) and the metric.
CURVE_METRICS = ("test_accuracy", "test_loss", "train_loss")
# MobileNet models (the confusion matrix shows the best of these).
MOBILENETS = ("mobilenet_v1", "mobilenet_v2")

COLUMNS = (
    "run",
    "model",
    "width",
    "resolution",
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
    "test_accuracy",
    "best_test_accuracy",
    "test_loss",
    "epochs",
    "train_images",
    "train_seconds",
    "train_images_per_second",
    "device",
    "pareto_frontier",
)


@dataclass(frozen=True)
class RunInputs:
    """One trained run, as its stage wrote it."""

    point: RunPoint
    metrics: dict[str, Any]
    curves: pd.DataFrame  # epoch, test_accuracy, test_loss, train_loss
    predictions: Path


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


def read_run(point: RunPoint, root: str | Path = ".") -> RunInputs:
    """Read one run's metrics, curves and predictions; anything missing names its stage."""
    stage = point.stage
    paths = RunPaths.for_run(point.name, root)
    path = paths.metrics
    if not path.exists():
        raise _missing(path, stage)
    try:
        metrics = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise StudyError(f"{path} is not valid JSON ({err}): rerun `dvc repro {stage}`") from None
    # A file from another grid point under this name would silently mislabel the table.
    described = (metrics.get("model"), metrics.get("width"), metrics.get("resolution"))
    if described != (point.model, point.width, point.resolution):
        raise StudyError(
            f"{path} describes {described}, not {point.name}: rerun `dvc repro {stage}`"
        )
    if not paths.predictions.exists():
        raise _missing(paths.predictions, stage)
    return RunInputs(point, metrics, read_curves(paths.curves, stage), paths.predictions)


def read_runs(points: Sequence[RunPoint], root: str | Path = ".") -> list[RunInputs]:
    """Every grid point's run, in grid order."""
    return [read_run(point, root) for point in points]


def read_cost_table(path: Path = COST_TABLE) -> pd.DataFrame:
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


def _cost_row(cost_table: pd.DataFrame, point: RunPoint) -> pd.Series:
    rows = cost_table[
        (cost_table["model"] == point.model)
        & np.isclose(cost_table["width"], point.width)
        & np.isclose(cost_table["resolution"], point.resolution)
    ]
    if rows.empty:
        raise StudyError(f"{COST_TABLE} has no row for {point.name}: run `dvc repro cost`")
    return rows.iloc[0]


def study_table(runs: Sequence[RunInputs], cost_table: pd.DataFrame) -> pd.DataFrame:
    """One row per run: what it is, what it costs (cost stage) and how well it did (training)."""
    rows = []
    for run in runs:
        point, m = run.point, run.metrics
        cost = _cost_row(cost_table, point)
        # The cost stage times on one device; its column is the hook for GPU latency.
        on_gpu = str(cost["device"]) == "cuda"
        latency = float(cost["latency_ms_per_image_median"])
        iqr = float(cost["latency_ms_per_image_iqr"])
        rows.append(
            {
                "run": point.name,
                "model": point.model,
                "width": point.width,
                "resolution": point.resolution,
                "input_size": point.input_size,
                "label": point_label(point.width, point.resolution),
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
                "test_accuracy": float(m["test_accuracy"]),
                "best_test_accuracy": float(m["best_test_accuracy"]),
                "test_loss": float(m["test_loss"]),
                "epochs": int(m["epochs"]),
                "train_images": int(m["train_images"]),
                "train_seconds": float(m["train_seconds"]),
                "train_images_per_second": float(m["train_images_per_second"]),
                "device": str(m["device"]),
            }
        )
    table = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "pareto_frontier"])
    table["pareto_frontier"] = pareto_frontier(
        table["macs_measured"].tolist(), table["test_accuracy"].tolist()
    )
    return table


# What `dvc metrics show` lists per run, and how each is rounded.
METRIC_FIELDS = {
    "input_size": int,
    "params": int,
    "macs_analytic": int,
    "macs_measured": int,
    "latency_ms_per_image_cpu": 4,
    "latency_ms_per_image_gpu": 4,
    "test_accuracy": 4,
    "best_test_accuracy": 4,
    "test_loss": 4,
    "epochs": int,
    "train_seconds": 1,
    "train_images_per_second": 1,
    "device": str,
}


def study_metrics(table: pd.DataFrame) -> dict[str, Any]:
    """Nested like the cost metrics, so runs line up in `dvc metrics diff`:
    ``mobilenet_v1.w0_5.r0_75.test_accuracy``. Missing values (no GPU latency) are left out."""
    out: dict[str, Any] = {}
    for row in table.to_dict("records"):
        entry: dict[str, Any] = {}
        for field, kind in METRIC_FIELDS.items():
            value = row[field]
            if isinstance(value, float) and math.isnan(value):
                continue
            entry[field] = round(float(value), kind) if isinstance(kind, int) else kind(value)
        widths = out.setdefault(row["model"], {}).setdefault(metric_key("w", row["width"]), {})
        widths[metric_key("r", row["resolution"])] = entry
    return out


def curves_table(runs: Sequence[RunInputs]) -> pd.DataFrame:
    """Long format for DVC's plots: run, epoch, test_accuracy, test_loss, train_loss."""
    frames = [run.curves.assign(run=run.point.name) for run in runs]
    table = pd.concat(frames, ignore_index=True)
    return table[["run", "epoch", *CURVE_METRICS]]


def best_mobilenet(table: pd.DataFrame) -> pd.Series:
    """The most accurate MobileNet run (the most accurate run if no MobileNet was trained)."""
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
