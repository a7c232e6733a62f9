"""The study where MobileNets run: ONNX Runtime latency in fp32 and int8 against PyTorch eager,
int8's accuracy cost with its paired test, accuracy against deployed latency with its frontier,
and how latency scales against α², ρ² and MACs.

The deployment latency is ONNX Runtime's at batch 1 on one thread (one image at a time, on one
core: the phone case); the largest batch of `deploy.batch_sizes` shows how much of it
batching saves (costs per call, and weights loaded once for many images).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import gmean

from mobilenet_study.files import pyplot
from mobilenet_study.grid import MULTIPLIERS
from mobilenet_study.study import stats
from mobilenet_study.study.figures import finish_accuracy_axes, percent_errors
from mobilenet_study.study.formatting import (
    accuracy_cell,
    bullets,
    difference_cell,
    markdown_table,
    num,
    p_value,
    pct,
    verdict,
)
from mobilenet_study.study.table import PairedTests, RunInputs, first_seed_runs, frontier_within

DEPLOYED = {"batch_size": 1, "threads": 1}  # the latency the frontier and the table use
LATENCY_COLUMNS = (
    "run",
    "model",
    "width",
    "resolution",
    "seed",
    "engine",
    "precision",
    "threads",
    "batch_size",
    "ms_per_image_median",
    "ms_per_image_iqr",
)


def latency_table(runs: Sequence[RunInputs]) -> pd.DataFrame:
    """Every deployed run's latencies: one row per engine, precision, threads and batch size."""
    rows = [
        {
            "run": r.run.name,
            "model": r.run.model,
            "width": r.run.width,
            "resolution": r.run.resolution,
            "seed": r.run.seed,
            **{key: row[key] for key in LATENCY_COLUMNS[5:]},
        }
        for r in runs
        if r.deployed is not None
        for row in r.deployed["latency"]
    ]
    return pd.DataFrame(rows, columns=list(LATENCY_COLUMNS))


def _latency(latency: pd.DataFrame, run: str, engine: str, precision: str, **setting: int) -> float:
    """A run's median ms per image for an engine and precision, at the deployed setting unless
    ``setting`` says otherwise (NaN if it was not timed)."""
    wanted = {"run": run, "engine": engine, "precision": precision, **DEPLOYED, **setting}
    rows = latency
    for key, value in wanted.items():
        rows = rows[rows[key] == value]
    return float(rows["ms_per_image_median"].iloc[0]) if len(rows) else float("nan")


def deploy_table(
    study: pd.DataFrame, runs: Sequence[RunInputs], latency: pd.DataFrame
) -> pd.DataFrame:
    """One row per first-seed run and precision (ORT fp32, ORT int8): deployed latency, test
    accuracy with its 95% interval, and the Pareto frontier within each precision (the
    ``series`` the plot colours by)."""
    deployed = {r.run.name: r.deployed for r in runs if r.deployed is not None}
    rows = []
    for _, row in first_seed_runs(study).iterrows():
        summary = deployed.get(row["run"])
        if summary is None:
            continue
        images = int(summary["test_images"])
        for precision in ("fp32", "int8"):
            accuracy = float(summary["accuracy"][precision])
            interval = stats.accuracy_interval(round(accuracy * images), images)
            rows.append(
                {
                    "run": row["run"],
                    "model": row["model"],
                    "label": row["label"],
                    "macs_measured": row["macs_measured"],
                    "precision": precision,
                    "series": f"{row['model']} {precision}",
                    "latency_ms": _latency(latency, row["run"], "onnxruntime", precision),
                    "test_accuracy": accuracy,
                    "test_accuracy_ci_low": interval.low,
                    "test_accuracy_ci_high": interval.high,
                }
            )
    table = pd.DataFrame(rows)
    table["model_frontier"] = frontier_within(table, "series", "latency_ms")
    return table


# --- the report's section --------------------------------------------------------------------


def _ms(value: float) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def batched_size(latency: pd.DataFrame) -> int | None:
    """The largest batch size timed (deploy.batch_sizes), if any is larger than 1: the one
    the report shows batching's saving at."""
    largest = int(latency["batch_size"].max())
    return largest if largest > 1 else None


def deploy_runs_table(
    study: pd.DataFrame, deployed: pd.DataFrame, latency: pd.DataFrame, tests: PairedTests
) -> str:
    """Per first-seed run: latency at batch 1 on one thread (PyTorch eager, ORT fp32, ORT int8),
    the ratios, int8 per image at the largest timed batch, and int8's accuracy against the
    trained model's (``deployed``: :func:`deploy_table`) with its paired test."""
    int8 = deployed[deployed["precision"] == "int8"].set_index("run")
    batched = batched_size(latency)
    rows = []
    for _, row in first_seed_runs(study).iterrows():
        run = row["run"]
        torch_ms = _latency(latency, run, "torch", "fp32")
        fp32_ms = _latency(latency, run, "onnxruntime", "fp32")
        int8_ms = _latency(latency, run, "onnxruntime", "int8")
        comparison = tests.compare(run, f"{run}.int8")
        rows.append(
            {
                "run": run,
                "MACs (M)": f"{row['macs_measured'] / 1e6:.2f}",
                "torch ms": _ms(torch_ms),
                "ORT fp32 ms": _ms(fp32_ms),
                "ORT int8 ms": _ms(int8_ms),
                "ORT/torch": f"{fp32_ms / torch_ms:.2f}×",
                "int8/fp32": f"{int8_ms / fp32_ms:.2f}×",
                **(
                    {
                        f"int8 ms, batch {batched}": _ms(
                            _latency(latency, run, "onnxruntime", "int8", batch_size=batched)
                        )
                    }
                    if batched
                    else {}
                ),
                "fp32 acc. [95% CI]": accuracy_cell(row),
                "int8 acc. [95% CI]": accuracy_cell(int8.loc[run]),
                "int8 − fp32, points [95% CI]": difference_cell(comparison),
                "McNemar p": p_value(comparison.p_value).removeprefix("p = "),
                "verdict": verdict(comparison, "int8 more accurate", "int8 costs accuracy"),
            }
        )
    return markdown_table(pd.DataFrame(rows))


def _geometric_mean(values: Sequence[float]) -> float:
    """scipy's geometric mean of the finite, positive ratios (nan if there are none)."""
    values = [v for v in values if np.isfinite(v) and v > 0]
    return float(gmean(values)) if values else float("nan")


def summary_sentences(
    study: pd.DataFrame, runs: Sequence[RunInputs], latency: pd.DataFrame, tests: PairedTests
) -> list[str]:
    first = first_seed_runs(study)
    deployed = [r.deployed for r in runs if r.deployed is not None]
    any_run = deployed[0]
    versions = any_run["versions"]
    batches = sorted(int(b) for b in latency["batch_size"].unique())
    ratios: dict[str, list[float]] = {}
    for run in first["run"]:
        for batch in batches:
            setting = {"batch_size": batch}
            torch_ms = _latency(latency, run, "torch", "fp32", **setting)
            fp32_ms = _latency(latency, run, "onnxruntime", "fp32", **setting)
            int8_ms = _latency(latency, run, "onnxruntime", "int8", **setting)
            ratios.setdefault(f"ort/torch b{batch}", []).append(fp32_ms / torch_ms)
            ratios.setdefault(f"int8/fp32 b{batch}", []).append(int8_ms / fp32_ms)
    verdicts = [
        verdict(tests.compare(run, f"{run}.int8"), "better", "worse") for run in first["run"]
    ]
    worst = max(
        float(d["max_logit_difference"]) for d in deployed
    )  # every run passed its check, or the stage would have failed
    ratio_text = "; ".join(
        f"batch {b}: ONNX Runtime fp32 takes {_geometric_mean(ratios[f'ort/torch b{b}']):.2f}× "
        f"PyTorch eager's time and int8 {_geometric_mean(ratios[f'int8/fp32 b{b}']):.2f}× "
        "fp32's"
        for b in batches
    )
    return [
        f"Every run was exported with torch {versions['torch']} (`torch.onnx.export`, dynamo) "
        f"and run by ONNX Runtime {versions['onnxruntime']} on the CPU; ONNX Runtime's fp32 "
        f"logits matched PyTorch's on every test image within deploy.tolerance "
        f"{any_run['tolerance']:g} of the logits' scale (largest difference over all runs "
        f"{worst:.2g}). int8: "
        f"static quantisation (QDQ, per-channel int8 weights, uint8 activations) calibrated on "
        f"{any_run['calibration_images']} training images.",
        f"Latency is milliseconds per image, the median of timed calls after warm-up, with one "
        f"thread (the table) and with all {any_run['all_threads']} cores "
        "(`plots/study/deploy_latency.csv`). Geometric mean over the runs, one thread: "
        f"{ratio_text}.",
        f"int8 against fp32 on the same test images (paired test): int8 costs accuracy at "
        f"{verdicts.count('worse')} of {len(verdicts)} runs, is more accurate at "
        f"{verdicts.count('better')}, and is within noise at {verdicts.count('within noise')}.",
    ]


def frontier_sentence(table: pd.DataFrame) -> str:
    parts = []
    for series, group in table.groupby("series", sort=False):
        front = group[group["model_frontier"]].sort_values("latency_ms")
        points = ", ".join(
            f"{r['label']} ({_ms(r['latency_ms'])} ms, {pct(r['test_accuracy'])})"
            for _, r in front.iterrows()
        )
        parts.append(f"{series}: {points}")
    return (
        "Pareto frontier on ONNX Runtime latency (batch 1, one thread), cheapest first, per "
        "model and precision (observed accuracies; neighbours may differ within noise): "
        + "; ".join(parts)
        + "."
    )


# A latency ratio within this factor of the MACs ratio reads "about as much": medians of a few
# timed calls on a shared CPU move by several percent from run to run.
SAME_RATIO = 1.1


def latency_scaling_sentences(study: pd.DataFrame, latency: pd.DataFrame) -> list[str]:
    """Deployed latency against α² and ρ² and against the MACs, for each step from the largest
    trained α (or ρ) of a model to a smaller one; what the largest timed batch saves per image;
    and, for the steps where latency and MACs part, what the measurements say about why."""
    first = first_seed_runs(study)
    batched = batched_size(latency)
    out = []
    slower = 0  # steps where latency fell less than the MACs
    faster: list[tuple[str, pd.Series, pd.Series, float, float]] = []
    for axis, other, symbol, other_symbol in (
        (m.name, m.other, m.symbol, m.other_symbol) for m in MULTIPLIERS
    ):
        for (model, fixed), rows in first.groupby(["model", other], sort=False):
            rows = rows.sort_values(axis, ascending=False)
            if len(rows) < 2:
                continue
            reference = rows.iloc[0]
            ref_ms = _latency(latency, reference["run"], "onnxruntime", "fp32")
            for _, row in rows.iloc[1:].iterrows():
                ms = _latency(latency, row["run"], "onnxruntime", "fp32")
                theory = (reference[axis] / row[axis]) ** 2
                macs = reference["macs_measured"] / row["macs_measured"]
                speedup = ref_ms / ms
                step = (
                    f"{model} at {other_symbol} {num(fixed)}, {symbol} "
                    f"{num(reference[axis])} → {num(row[axis])}"
                )
                if speedup < macs / SAME_RATIO:
                    how = "but ONNX Runtime fp32 latency only"
                    slower += 1
                elif speedup > macs * SAME_RATIO:
                    how = "and ONNX Runtime fp32 latency more,"
                    faster.append((step, reference, row, ref_ms, ms))
                else:
                    how = "and ONNX Runtime fp32 latency about as much,"
                out.append(
                    f"{step.replace(', ', ': ', 1)} cuts MACs {macs:.1f}× "
                    f"({symbol}² predicts {theory:.1f}×) {how} {speedup:.1f}× "
                    f"({_ms(ref_ms)} → {_ms(ms)} ms at batch 1)."
                    + (_batching(latency, row["run"], ms, batched) if batched else "")
                )
    if not out:
        return ["No model has two trained α or ρ values here, so no scaling is measured."]
    if slower:
        bound = (
            "batching's saving above bounds it, with the weights' reuse across the batch's images"
            if batched
            else "timing a larger batch (deploy.batch_sizes) would bound it"
        )
        out.append(
            f"Where latency falls less than the MACs ({slower} of {len(out)} steps): a cost "
            "per call that does not shrink with the model (session and operator dispatch, "
            f"memory allocation), which batch 1 cannot spread: {bound}; and, in the MobileNets, "
            "depthwise 3×3 convolutions, which do one multiply-add per weight and pixel with no "
            "reuse across output channels, so that their time follows the activations they "
            "read and write rather than their small share of the MACs (how they compute, not "
            "measured here)."
        )
    for step, reference, row, ref_ms, ms in faster:
        rate = reference["macs_measured"] / ref_ms / 1e3
        small_rate = row["macs_measured"] / ms / 1e3
        out.append(
            f"Where latency falls more than the MACs ({step}): the larger model ran "
            f"{rate:,.0f} MACs per µs against the smaller one's {small_rate:,.0f}. Its fp32 "
            f"weights take {reference['params'] * 4 / 1e6:.1f} MB against "
            f"{row['params'] * 4 / 1e6:.1f} MB, so a likely cause (not tested here) is that "
            "they no longer stay in the CPU's caches."
        )
    return out


def _batching(latency: pd.DataFrame, run: str, batch1_ms: float, batched: int) -> str:
    per_image = _latency(latency, run, "onnxruntime", "fp32", batch_size=batched)
    saving = max(0.0, 1 - per_image / batch1_ms) if batch1_ms > 0 else float("nan")
    return (
        f" At batch {batched} the smaller model takes {_ms(per_image)} ms per image: batching "
        f"saves {saving:.0%} of its batch-1 time."
    )


def section(
    study: pd.DataFrame,
    runs: Sequence[RunInputs],
    latency: pd.DataFrame,
    deployed: pd.DataFrame,
    tests: PairedTests,
) -> list[str]:
    """The report's deployment section: bullets, the table, the frontier and the scaling
    (``deployed``: :func:`deploy_table`, built once by the stage and written beside)."""
    return [
        bullets(summary_sentences(study, runs, latency, tests)),
        deploy_runs_table(study, deployed, latency, tests),
        bullets([frontier_sentence(deployed), *latency_scaling_sentences(study, latency)]),
    ]


def accuracy_vs_latency_figure(table: pd.DataFrame) -> Any:
    """Test accuracy (95% interval bars) against ONNX Runtime latency (batch 1, one thread),
    fp32 filled and int8 hollow, each model and precision with its Pareto frontier."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    colours: dict[str, Any] = {}
    for (model, precision), group in table.groupby(["model", "precision"], sort=False):
        bars = ax.errorbar(
            group["latency_ms"],
            group["test_accuracy"] * 100,
            yerr=percent_errors(group),
            fmt="o",
            ms=5,
            capsize=2,
            color=colours.get(model),
            mfc="none" if precision == "int8" else None,
            label=f"{model} {precision}",
        )
        colours.setdefault(model, bars.lines[0].get_color())
        front = group[group["model_frontier"]].sort_values("latency_ms")
        ax.step(
            front["latency_ms"],
            front["test_accuracy"] * 100,
            where="post",
            color=colours[model],
            linestyle="--" if precision == "fp32" else ":",
            linewidth=1,
        )
        for row in group.itertuples():
            if precision == "fp32":
                ax.annotate(
                    row.label,
                    (row.latency_ms, row.test_accuracy * 100),
                    textcoords="offset points",
                    xytext=(4, 4),
                    fontsize=7,
                )
    finish_accuracy_axes(
        ax,
        "ONNX Runtime latency per image (ms, batch 1, one thread)",
        "Accuracy against deployed latency: fp32 filled, int8 hollow",
    )
    return fig
