"""reports/study.md: tables, figures and sentences computed from this run's numbers.

Every number in a sentence comes from the study table, the cost table or the models' layer
specs, and every accuracy difference from a paired test on the same test images; where this run
cannot support a comparison (one α trained, no baseline at a MobileNet's point) the report says
so instead. The report is a table of contents: each section's sentences live with their topic
(:mod:`.multipliers`, :mod:`.families`); what is left here is the runs, the frontier, latency and
the confusion matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mobilenet_study.data.prepared import DataSummary
from mobilenet_study.models import CANDIDATE
from mobilenet_study.study import families, multipliers
from mobilenet_study.study.formatting import (
    WITHIN_NOISE,
    accuracy,
    accuracy_cell,
    bullets,
    markdown_table,
    num,
    pct,
)
from mobilenet_study.study.stats import ALPHA, CONFIDENCE, accuracy_interval
from mobilenet_study.study.table import PairedTests, first_seed_runs

REPORT_TO_ROOT = ".."  # reports/study.md links figures relative to itself
DEPLOYMENT_TITLE = "## Where MobileNets run: ONNX Runtime, fp32 and int8"


def data_source_text(summary: DataSummary) -> str:
    """The data's name in the report, spelling out what the JPEG mirror is."""
    if summary.label == "JPEG mirror":
        return "JPEG mirror (lossy JPEG re-encoding of CIFAR-10, not the official pixels)"
    return summary.label


def recipe_text(table: pd.DataFrame) -> str:
    """How the accuracies were made: test-time augmentation and training precision, per run."""
    sentences = []
    if (table["tta"] == "flip").all():
        sentences.append(
            "Every run is scored with flip test-time augmentation (the mean of the logits of "
            "each test image and of its mirror image, `train.tta: flip`)."
        )
    elif (table["tta"] == "flip").any():
        sentences.append("Only some runs are scored with flip test-time augmentation.")
    bf16 = sorted(table.loc[table["precision"] == "bf16", "run"])
    if bf16:
        share = "every run" if len(bf16) == len(table) else ", ".join(bf16)
        sentences.append(
            f"Trained with bf16 autocast: {share} (`train.precision: auto` uses it for "
            "models without depthwise convs where the CPU has bf16 units, and on CUDA); every "
            "other run in fp32. Every evaluation is in fp32."
        )
    return " ".join(sentences)


def method_text(table: pd.DataFrame) -> str:
    first = first_seed_runs(table)
    seeds = sorted(table["seed"].unique())
    images = ", ".join(f"{n:,}" for n in sorted(table["test_images"].unique()))
    seed_text = (
        f"Each point was trained with {len(seeds)} seeds ({', '.join(map(str, seeds))}): tables "
        f"give mean ± std over them too, while the paired tests compare the runs of seed "
        f"{int(first['seed'].iloc[0])}."
        if len(seeds) > 1
        else f"Each point was trained once (seed {seeds[0]}); more seeds (`grid.seeds`) would "
        "add a spread over seeds."
    )
    return (
        f"Accuracies are on {images} test images, each with its Wilson {CONFIDENCE:.0%} "
        "interval. Two runs are compared image by image on the same test images: the "
        f"difference in accuracy has a paired {CONFIDENCE:.0%} interval and an exact McNemar "
        f"p-value, and is called {WITHIN_NOISE} when p ≥ {ALPHA:.2f}. {seed_text} With this "
        "many tests, about one in twenty differences that are really nil would still reach "
        f"p < {ALPHA:.2f}: read borderline verdicts together, not one by one."
    )


# --- Pareto, latency, confusion -------------------------------------------------------------


def pareto_sentence(table: pd.DataFrame) -> str:
    first = first_seed_runs(table)
    front = first[first["pareto_frontier"]].sort_values("macs_measured")
    points = "; ".join(
        f"{r['model']} {r['label']} ({r['macs_measured'] / 1e6:.2f} M MACs, {accuracy(r)})"
        for _, r in front.iterrows()
    )
    dominated = len(first) - len(front)
    return (
        f"Pareto frontier of the observed accuracies, cheapest first (no other run is both "
        f"cheaper and more accurate): {points}. {dominated} of {len(first)} runs lie below it. "
        "Neighbours on the frontier can differ by less than their intervals: the paired tests "
        "above say which differences are real."
    )


def latency_sentence(table: pd.DataFrame) -> str:
    first = first_seed_runs(table)
    rows = first[first["model"] == CANDIDATE].dropna(subset=["latency_ms_per_image_cpu"])
    if len(rows) < 2:
        return "Fewer than two MobileNet V1 runs have a CPU latency, so none is compared here."
    cheap = rows.loc[rows["macs_measured"].idxmin()]
    dear = rows.loc[rows["macs_measured"].idxmax()]
    return (
        f"From the cheapest MobileNet V1 run ({cheap['label']}) to the dearest "
        f"({dear['label']}), MACs grow {dear['macs_measured'] / cheap['macs_measured']:.1f}× and "
        f"CPU latency per image "
        f"{dear['latency_ms_per_image_cpu'] / cheap['latency_ms_per_image_cpu']:.1f}× "
        f"({cheap['latency_ms_per_image_cpu']:.3f} → {dear['latency_ms_per_image_cpu']:.3f} ms)."
    )


def _recall(counts: np.ndarray, k: int) -> str:
    total = int(counts[k].sum())
    if total == 0:
        return "no test images"
    ci = accuracy_interval(int(counts[k, k]), total)
    return f"recall {pct(counts[k, k] / total)}, 95% CI {ci.low * 100:.1f}–{pct(ci.high)}"


def confusion_sentences(run: pd.Series, counts: pd.DataFrame) -> list[str]:
    matrix = counts.to_numpy()
    recall = np.diag(matrix) / np.maximum(matrix.sum(axis=1), 1)
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    i, j = np.unravel_index(int(off.argmax()), off.shape)
    classes = list(counts.index)
    mistakes = int(off[i, j])
    best, worst = int(recall.argmax()), int(recall.argmin())
    return [
        f"The confusion matrix is that of the MobileNet run with the highest test accuracy, "
        f"{run['run']}: {accuracy(run)} on {int(matrix.sum()):,} test images.",
        f"Its highest recall is on {classes[best]} ({_recall(matrix, best)}), its lowest on "
        f"{classes[worst]} ({_recall(matrix, worst)}); the commonest mistake is {classes[i]} "
        f"taken for {classes[j]} ({mistakes} time{'' if mistakes == 1 else 's'}).",
    ]


def runs_table(table: pd.DataFrame) -> str:
    """One row per grid point: the first seed's run, and the spread over seeds if several."""
    first = first_seed_runs(table)
    columns = {
        "run": first["run"],
        "α": first["width"].map(num),
        "ρ": first["resolution"].map(num),
        "input": first["input_size"].map(lambda s: f"{s}×{s}"),
        "params": first["params"].map(lambda v: f"{v:,}"),
        "MACs (M)": (first["macs_measured"] / 1e6).map(lambda v: f"{v:.2f}"),
        "CPU ms/image": first["latency_ms_per_image_cpu"].map(
            lambda v: "–" if pd.isna(v) else f"{v:.3f}"
        ),
        "test acc. [95% CI]": first.apply(accuracy_cell, axis=1),
    }
    if (first["seeds"] > 1).any():
        columns["mean ± std over seeds"] = [
            f"{pct(m)} ± {s * 100:.1f} ({n})" if n > 1 else "–"
            for m, s, n in zip(
                first["test_accuracy_seed_mean"],
                first["test_accuracy_seed_std"],
                first["seeds"],
                strict=True,
            )
        ]
    columns |= {
        "train s": first["train_seconds"].map(lambda v: f"{v:.0f}"),
        "img/s": first["train_images_per_second"].map(lambda v: f"{v:,.0f}"),
        "Pareto": first["pareto_frontier"].map(lambda v: "✓" if v else ""),
    }
    return markdown_table(pd.DataFrame(columns))


# --- Assembly ----------------------------------------------------------------------------------


def _figure(path: str | Path, caption: str) -> str:
    return f"![{caption}]({REPORT_TO_ROOT}/{path})"


def build_report(
    table: pd.DataFrame,
    scaling: pd.DataFrame,
    summary: DataSummary,
    tests: PairedTests,
    confusion_run: pd.Series,
    confusion: pd.DataFrame,
    figures: Sequence[tuple[str | Path, str]],
    floors: Sequence[str] = (),
    deployment: Sequence[str] = (),
) -> str:
    """The whole report. ``scaling`` is the cost stage's scaling table (params and MACs against
    α at ρ = 1 and against ρ at α = 1); ``figures`` are (path from the repository root,
    caption) pairs; ``floors`` and ``deployment`` are the blocks of the floors section
    (:func:`.floors.section`) and of the ONNX Runtime one (:func:`.latency.section`), each
    left out when empty."""
    devices = ", ".join(sorted(table["device"].unique()))
    epochs = ", ".join(str(e) for e in sorted(table["epochs"].unique()))
    train_images = ", ".join(f"{n:,}" for n in sorted(table["train_images"].unique()))
    figure_lines = "\n\n".join(_figure(name, caption) for name, caption in figures)
    frontier = families.frontier_points(table, tests)
    sections = [
        "# MobileNet's width and resolution multipliers on CIFAR-10",
        "Generated by the `aggregate` stage from this run's metrics; do not edit by hand.",
        bullets(
            [
                f"**Data:** {data_source_text(summary)}; source `{summary.source}`.",
                f"**Training device:** {devices}; {epochs} epoch(s) on {train_images} training "
                f"images per epoch. {recipe_text(table)}".strip(),
                f"**Runs:** {len(table)} ({', '.join(table['model'].unique())}).",
                f"**Uncertainty:** {method_text(table)}",
            ]
        ),
        *floors,
        "## Runs",
        runs_table(table),
        "## What α and ρ cost and buy",
        bullets(
            multipliers.change_sentences(table, "width", tests)
            + multipliers.change_sentences(table, "resolution", tests)
        ),
        "## MobileNet V1 against the baseline CNN, point by point",
        bullets(families.baseline_summary(table, tests)),
        families.baseline_table(table, tests),
        "## MobileNet V1 against the baseline at equal MACs",
        families.FRONTIER_METHOD,
        bullets([families.frontier_summary(frontier)]),
        *([families.frontier_table(frontier)] if frontier else []),
        *families.reference_sections(table, tests),
        "## Measured scaling against α² and ρ²",
        bullets(multipliers.cost_scaling_sentences(scaling)),
        *([DEPLOYMENT_TITLE, *deployment] if deployment else []),
        "## Accuracy against compute and latency",
        bullets([pareto_sentence(table), latency_sentence(table)]),
        "## Confusion matrix",
        bullets(confusion_sentences(confusion_run, confusion)),
        "## Figures",
        figure_lines,
    ]
    return "\n\n".join(sections) + "\n"
