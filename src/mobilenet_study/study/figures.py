"""The study's figures: PNGs for the report, from the study table (matplotlib, headless).

The same numbers also go to small CSV files that dvc.yaml's top-level plots draw
(:func:`series_tables`), so `dvc plots show` and the report show one data set.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from mobilenet_study.files import pyplot
from mobilenet_study.grid import MULTIPLIERS
from mobilenet_study.study.table import first_seed_runs, point_label


def percent_errors(rows: pd.DataFrame) -> np.ndarray:
    """Asymmetric error bars (2, N), in points, from the runs' 95% intervals."""
    accuracy = rows["test_accuracy"].to_numpy(float)
    return (
        np.vstack(
            [
                accuracy - rows["test_accuracy_ci_low"].to_numpy(float),
                rows["test_accuracy_ci_high"].to_numpy(float) - accuracy,
            ]
        )
        * 100
    )


def accuracy_vs_macs_figure(table: pd.DataFrame) -> Any:
    """Test accuracy (95% interval bars) against measured MACs (log x), one colour per model,
    points labelled with α/ρ, and each model's Pareto frontier as a dashed step line. Runs of
    further seeds, if any, are small hollow markers; the frontiers use the first seed."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    first = first_seed_runs(table)
    for model, group in first.groupby("model", sort=False):
        bars = ax.errorbar(
            group["macs_measured"] / 1e6,
            group["test_accuracy"] * 100,
            yerr=percent_errors(group),
            fmt="o",
            ms=5,
            capsize=2,
            label=model,
        )
        colour = bars.lines[0].get_color()
        for row in group.itertuples():
            ax.annotate(
                point_label(row.width, row.resolution),
                (row.macs_measured / 1e6, row.test_accuracy * 100),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=7,
            )
        front = group[group["model_frontier"]].sort_values("macs_measured")
        ax.step(
            front["macs_measured"] / 1e6,
            front["test_accuracy"] * 100,
            where="post",
            color=colour,
            linestyle="--",
            linewidth=1,
            label=f"{model} Pareto frontier",
        )
        others = table[(table["model"] == model) & ~table["first_seed"]]
        if not others.empty:
            ax.plot(
                others["macs_measured"] / 1e6,
                others["test_accuracy"] * 100,
                "o",
                mfc="none",
                ms=4,
                color=colour,
                label=f"{model}, other seeds",
            )
    finish_accuracy_axes(
        ax, "MACs (mult-adds) per image, millions, measured", "Accuracy against compute"
    )
    return fig


def finish_accuracy_axes(ax: Any, xlabel: str, title: str) -> None:
    """Labels, log x-axis, grid and legend of an accuracy-against-cost figure."""
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy (%), bars: 95% interval")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)


def accuracy_vs_multipliers_figure(table: pd.DataFrame) -> Any:
    """Accuracy (95% interval bars) against α (a line per model and ρ) and against ρ (a line
    per model and α), first-seed runs."""
    plt = pyplot()
    fig, panels = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    first = first_seed_runs(table)
    for panel, m in zip(panels, MULTIPLIERS, strict=True):
        axis, other, symbol, other_symbol = m.name, m.other, m.symbol, m.other_symbol
        for (model, fixed), group in first.groupby(["model", other], sort=True):
            group = group.sort_values(axis)
            panel.errorbar(
                group[axis],
                group["test_accuracy"] * 100,
                yerr=percent_errors(group),
                fmt="o-",
                ms=4,
                capsize=2,
                label=f"{model}, {other_symbol} {fixed:g}",
            )
        panel.set_xlabel(f"{axis} multiplier {symbol}")
        panel.set_title(f"accuracy against {symbol}, a line per {other_symbol}")
        panel.grid(alpha=0.3)
        panel.legend(fontsize=7)
    panels[0].set_ylabel("test accuracy (%), bars: 95% interval")
    return fig


def curves_figure(curves: pd.DataFrame) -> Any:
    """Test accuracy (shaded: 95% interval) and test loss per epoch, a line per run."""
    plt = pyplot()
    fig, panels = plt.subplots(1, 2, figsize=(11, 4.2))
    for run, group in curves.groupby("run", sort=False):
        (line,) = panels[0].plot(
            group["epoch"], group["test_accuracy"] * 100, "o-", ms=3, label=run
        )
        panels[0].fill_between(
            group["epoch"],
            group["test_accuracy_ci_low"] * 100,
            group["test_accuracy_ci_high"] * 100,
            color=line.get_color(),
            alpha=0.15,
            linewidth=0,
        )
        panels[1].plot(group["epoch"], group["test_loss"], "o-", ms=3, label=run)
    labels = ("test accuracy (%), band: 95% interval", "test loss")
    for panel, ylabel in zip(panels, labels, strict=True):
        panel.set_xlabel("epoch")
        panel.set_ylabel(ylabel)
        panel.grid(alpha=0.3)
    panels[1].set_yscale("log")  # the first epoch's loss can be far above the rest
    panels[0].legend(fontsize=7)
    return fig


def confusion_figure(counts: pd.DataFrame, title: str) -> Any:
    """A confusion matrix (actual rows, predicted columns) with its counts written in."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    image = ax.imshow(counts.to_numpy(), cmap="Blues")
    labels: Sequence[str] = list(counts.columns)
    ax.set_xticks(np.arange(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(np.arange(len(counts.index)), list(counts.index))
    threshold = counts.to_numpy().max() / 2
    for (i, j), value in np.ndenumerate(counts.to_numpy()):
        colour = "white" if value > threshold else "black"
        ax.text(j, i, str(value), ha="center", va="center", fontsize=7, color=colour)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046)
    return fig


def series_tables(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Long-format CSVs for dvc.yaml's plots, each with a ``series`` column the templates colour
    by: accuracy (first seed, with its 95% interval) against α (a series per model and ρ) and
    against ρ (per model and α)."""
    out: dict[str, pd.DataFrame] = {}
    accuracy = ["test_accuracy", "test_accuracy_ci_low", "test_accuracy_ci_high"]
    for axis, other, symbol in ((m.name, m.other, m.other_symbol) for m in MULTIPLIERS):
        frame = first_seed_runs(table)[["run", "model", "width", "resolution", *accuracy]].copy()
        frame["series"] = [
            f"{m}, {symbol} {v:g}" for m, v in zip(frame["model"], frame[other], strict=True)
        ]
        out[f"accuracy_vs_{axis}"] = frame.sort_values(["series", axis]).reset_index(drop=True)
    return out
