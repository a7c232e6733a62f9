"""reports/study.md: tables, figures and sentences computed from this run's numbers.

Every number in a sentence comes from the study table, the cost table or the models' layer
specs; where this run cannot support a comparison (one α trained, no baseline at a MobileNet's
point) the report says so instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mobilenet_study.cost import analytic_layers
from mobilenet_study.data import DataSummary
from mobilenet_study.study.table import point_label

# Howard et al. 2017, Table 4 (ImageNet, 224x224): the same network with standard convs
# ("Conv MobileNet") against depthwise-separable ones.
PAPER_CONV = {"accuracy": 71.7, "macs_m": 4866.0, "params_m": 29.3}
PAPER_MOBILENET = {"accuracy": 70.6, "macs_m": 569.0, "params_m": 4.2}

FIGURES_DIR = "../plots/study"  # relative to reports/study.md


def data_source_text(summary: DataSummary) -> str:
    """The data's name in the report, spelling out what the JPEG mirror is."""
    if summary.label == "JPEG mirror":
        return "JPEG mirror (lossy JPEG re-encoding of CIFAR-10, not the official pixels)"
    return summary.label


def signed_points(delta: float) -> str:
    """``-2.1`` -> ``−2.1 points`` (the typographic minus the report uses throughout)."""
    return f"{delta:+.1f}".replace("-", "−") + " points"


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def _num(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class Change:
    """From a reference run to a cheaper one of the same model, one multiplier changed."""

    model: str
    axis: str  # "width" or "resolution"
    fixed: float  # the other multiplier's value
    reference: pd.Series
    other: pd.Series

    @property
    def macs_ratio(self) -> float:
        return float(self.reference["macs_measured"] / self.other["macs_measured"])

    @property
    def params_ratio(self) -> float:
        return float(self.reference["params"] / self.other["params"])

    @property
    def theory_ratio(self) -> float:
        return float((self.reference[self.axis] / self.other[self.axis]) ** 2)

    @property
    def accuracy_points(self) -> float:
        return float(self.other["test_accuracy"] - self.reference["test_accuracy"]) * 100


def multiplier_changes(table: pd.DataFrame, axis: str) -> list[Change]:
    """Per model, the largest trained value of ``axis`` against each smaller one, the other
    multiplier held at 1 where possible (else at the value with the most trained points)."""
    other = "resolution" if axis == "width" else "width"
    changes = []
    for model, rows in table.groupby("model", sort=False):
        counts = rows.groupby(other)[axis].nunique()
        counts = counts[counts >= 2]
        if counts.empty:
            continue
        fixed = 1.0 if 1.0 in counts.index else float(counts.idxmax())
        line = rows[np.isclose(rows[other], fixed)].sort_values(axis, ascending=False)
        reference = line.iloc[0]
        changes += [
            Change(str(model), axis, fixed, reference, row) for _, row in line.iloc[1:].iterrows()
        ]
    return changes


def change_sentence(change: Change) -> str:
    ref, other = change.reference, change.other
    symbol, fixed_symbol = ("α", "ρ") if change.axis == "width" else ("ρ", "α")
    step = f"{symbol} {_num(ref[change.axis])} → {_num(other[change.axis])}"
    if change.axis == "resolution":
        step += f" ({ref['input_size']} → {other['input_size']} px)"
        params = (
            "with parameters unchanged"
            if change.params_ratio == 1
            else f"and parameters {change.params_ratio:.2f}×"
        )
    else:
        params = f"and parameters {change.params_ratio:.1f}×"
    return (
        f"{change.model} at {fixed_symbol} {_num(change.fixed)}: {step} cuts MACs "
        f"{change.macs_ratio:.1f}× ({symbol}² predicts {change.theory_ratio:.1f}×) {params} "
        f"for {signed_points(change.accuracy_points)} of accuracy "
        f"({_pct(ref['test_accuracy'])} → {_pct(other['test_accuracy'])})."
    )


def _paired(table: pd.DataFrame, first: str, second: str) -> list[tuple[pd.Series, pd.Series]]:
    """Runs of ``first`` and ``second`` trained at the same α and ρ."""
    pairs = []
    for _, a in table[table["model"] == first].iterrows():
        match = table[
            (table["model"] == second)
            & np.isclose(table["width"], a["width"])
            & np.isclose(table["resolution"], a["resolution"])
        ]
        if not match.empty:
            pairs.append((a, match.iloc[0]))
    return pairs


def paper_ratios() -> tuple[float, float, float]:
    """Table 4's MACs ratio, params ratio and accuracy change (points), Conv → MobileNet."""
    return (
        PAPER_CONV["macs_m"] / PAPER_MOBILENET["macs_m"],
        PAPER_CONV["params_m"] / PAPER_MOBILENET["params_m"],
        PAPER_MOBILENET["accuracy"] - PAPER_CONV["accuracy"],
    )


def baseline_sentences(table: pd.DataFrame) -> list[str]:
    """MobileNet V1 against the baseline (standard convs) at the same α and ρ, beside Table 4."""
    macs_p, params_p, acc_p = paper_ratios()
    paper = (
        f"Howard et al. 2017, Table 4 (ImageNet): Conv MobileNet {PAPER_CONV['accuracy']}% / "
        f"{PAPER_CONV['macs_m']:.0f} M mult-adds / {PAPER_CONV['params_m']} M params against "
        f"MobileNet {PAPER_MOBILENET['accuracy']}% / {PAPER_MOBILENET['macs_m']:.0f} M / "
        f"{PAPER_MOBILENET['params_m']} M, i.e. {macs_p:.1f}× fewer MACs and {params_p:.1f}× "
        f"fewer parameters for {signed_points(acc_p)}."
    )
    pairs = _paired(table, "baseline", "mobilenet_v1")
    if not pairs:
        return [
            "No baseline and MobileNet V1 were trained at the same α and ρ in this run, so the "
            "comparison with Table 4 cannot be made here.",
            paper,
        ]
    out = []
    for base, mobile in pairs:
        delta = (mobile["test_accuracy"] - base["test_accuracy"]) * 100
        out.append(
            f"At {point_label(base['width'], base['resolution'])}, MobileNet V1 needs "
            f"{base['macs_measured'] / mobile['macs_measured']:.1f}× fewer MACs and "
            f"{base['params'] / mobile['params']:.1f}× fewer parameters than the baseline CNN "
            f"(the same network with standard convs) for {signed_points(delta)} of accuracy "
            f"({_pct(base['test_accuracy'])} → {_pct(mobile['test_accuracy'])})."
        )
    return [*out, paper]


def v2_sentences(table: pd.DataFrame) -> list[str]:
    out = []
    for v1, v2 in _paired(table, "mobilenet_v1", "mobilenet_v2"):
        delta = (v2["test_accuracy"] - v1["test_accuracy"]) * 100
        out.append(
            f"At {point_label(v1['width'], v1['resolution'])}, MobileNet V2 costs "
            f"{v2['macs_measured'] / v1['macs_measured']:.2f}× the MACs and "
            f"{v2['params'] / v1['params']:.2f}× the parameters of V1, for "
            f"{signed_points(delta)} of accuracy."
        )
    return out


# --- Measured scaling against α² and ρ² -----------------------------------------------------


def _alpha_linear_share(model: str, width: float) -> float:
    """Share of MACs in layers that scale with α, not α²: the stem conv (3 input channels),
    depthwise convs, and the classifier (at a fixed 10 classes)."""
    layers = analytic_layers(model, width)
    linear = (
        (layers["kind"] == "depthwise")
        | (layers["kind"] == "linear")
        | ((layers["kind"] == "standard") & (layers["in_channels"] == 3))
    )
    return float(layers.loc[linear, "macs"].sum() / layers["macs"].sum())


def feature_sides(model: str, input_size: int) -> list[int]:
    """Feature-map sides in order (each distinct side once), from the model's layer specs."""
    layers = analytic_layers(model, 1.0, input_size)
    sides = [int(layers.iloc[0]["in_size"])]
    for side in layers.loc[layers["kind"] != "linear", "out_size"]:
        if int(side) != sides[-1]:
            sides.append(int(side))
    return sides


def scaling_sentences(cost_table: pd.DataFrame) -> list[str]:
    """Measured MACs and params against α² (at ρ = 1) and ρ² (at α = 1), and why they differ."""
    out = []
    for model, rows in cost_table.groupby("model", sort=False):
        at_rho1 = rows[np.isclose(rows["resolution"], 1.0)].sort_values("width")
        thin = at_rho1[at_rho1["width"] < 1]
        if not thin.empty:
            row = thin.iloc[0]
            thin_share = _alpha_linear_share(str(model), float(row["width"]))
            out.append(
                f"{model} at α {_num(row['width'])} (ρ 1): MACs are {row['macs_norm']:.4f} of "
                f"α = 1 and parameters {row['params_norm']:.4f}, against α² = "
                f"{row['macs_theory']:.4f}. Layers that scale with α, not α² (stem conv, any "
                f"depthwise convs, classifier), carry {thin_share:.1%} of the MACs at this α "
                f"against {_alpha_linear_share(model, 1.0):.1%} at α = 1."
            )
            if model == "mobilenet_v2":
                layers = analytic_layers(model, float(row["width"]))
                head = int(layers[layers["kind"] != "linear"].iloc[-1]["out_channels"])
                out.append(
                    f"mobilenet_v2 keeps a {head}-channel head conv at α {_num(row['width'])}, "
                    "so that conv scales with α and its classifier not at all."
                )
        at_alpha1 = rows[np.isclose(rows["width"], 1.0)].sort_values("resolution")
        for _, row in at_alpha1[at_alpha1["resolution"] < 1].iterrows():
            sides = feature_sides(str(model), int(row["input_size"]))
            exact = row["input_size"] / 2 ** (len(sides) - 1)
            rounding = (
                f"stride-2 layers round odd sides up ({' → '.join(map(str, sides))} px, "
                f"where exact halving ends at {exact:g})"
                if sides[-1] != exact
                else f"every side halves exactly ({' → '.join(map(str, sides))} px)"
            )
            out.append(
                f"{model} at ρ {_num(row['resolution'])} (α 1): MACs are {row['macs_norm']:.4f} "
                f"of ρ = 1 against ρ² = {row['macs_theory']:.4f}; {rounding}, and the "
                "classifier's MACs do not shrink with ρ."
            )
    if not out:
        out.append(
            "No model has a trained point below α = 1 at ρ = 1 or below ρ = 1 at α = 1 in this "
            "grid, so the scaling cannot be compared with α² and ρ² here."
        )
    return out


# --- Pareto, latency, confusion -------------------------------------------------------------


def pareto_sentence(table: pd.DataFrame) -> str:
    front = table[table["pareto_frontier"]].sort_values("macs_measured")
    points = "; ".join(
        f"{r.model} {r.label} ({r.macs_measured / 1e6:.2f} M MACs, {_pct(r.test_accuracy)})"
        for r in front.itertuples()
    )
    dominated = len(table) - len(front)
    return (
        f"Pareto frontier, cheapest first (no other run is both cheaper and more accurate): "
        f"{points}. {dominated} of {len(table)} runs lie below it."
    )


def latency_sentence(table: pd.DataFrame) -> str:
    rows = table[table["model"] == "mobilenet_v1"].dropna(subset=["latency_ms_per_image_cpu"])
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


def confusion_sentences(run: pd.Series, counts: pd.DataFrame) -> list[str]:
    matrix = counts.to_numpy()
    recall = np.diag(matrix) / np.maximum(matrix.sum(axis=1), 1)
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    i, j = np.unravel_index(int(off.argmax()), off.shape)
    classes = list(counts.index)
    mistakes = int(off[i, j])
    return [
        f"The most accurate MobileNet run is {run['run']} ({_pct(run['test_accuracy'])} on "
        f"{int(matrix.sum()):,} test images).",
        f"Its best class is {classes[int(recall.argmax())]} (recall {_pct(recall.max())}), its "
        f"worst {classes[int(recall.argmin())]} ({_pct(recall.min())}); the commonest mistake "
        f"is {classes[i]} taken for {classes[j]} ({mistakes} time{'' if mistakes == 1 else 's'}).",
    ]


# --- Assembly ----------------------------------------------------------------------------------


def markdown_table(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    rows = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def runs_table(table: pd.DataFrame) -> str:
    shown = pd.DataFrame(
        {
            "run": table["run"],
            "α": table["width"].map(_num),
            "ρ": table["resolution"].map(_num),
            "input": table["input_size"].map(lambda s: f"{s}×{s}"),
            "params": table["params"].map(lambda v: f"{v:,}"),
            "MACs (M)": (table["macs_measured"] / 1e6).map(lambda v: f"{v:.2f}"),
            "CPU ms/image": table["latency_ms_per_image_cpu"].map(
                lambda v: "–" if pd.isna(v) else f"{v:.3f}"
            ),
            "test acc.": table["test_accuracy"].map(_pct),
            "train s": table["train_seconds"].map(lambda v: f"{v:.0f}"),
            "img/s": table["train_images_per_second"].map(lambda v: f"{v:,.0f}"),
            "Pareto": table["pareto_frontier"].map(lambda v: "✓" if v else ""),
        }
    )
    return markdown_table(shown)


def _bullets(lines: Iterable[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)


def _figure(name: str, caption: str) -> str:
    return f"![{caption}]({FIGURES_DIR}/{name})"


def _changes(table: pd.DataFrame, axis: str) -> list[str]:
    changes = multiplier_changes(table, axis)
    if changes:
        return [change_sentence(c) for c in changes]
    symbol = "α" if axis == "width" else "ρ"
    return [f"Only one {symbol} was trained per model in this run, so its effect is not measured."]


def build_report(
    table: pd.DataFrame,
    cost_table: pd.DataFrame,
    summary: DataSummary,
    confusion_run: pd.Series,
    confusion: pd.DataFrame,
    figures: Sequence[tuple[str, str]],
) -> str:
    """The whole report; ``figures`` are (file name under plots/study, caption) pairs."""
    devices = ", ".join(sorted(table["device"].unique()))
    epochs = ", ".join(str(e) for e in sorted(table["epochs"].unique()))
    train_images = ", ".join(f"{n:,}" for n in sorted(table["train_images"].unique()))
    figure_lines = "\n\n".join(_figure(name, caption) for name, caption in figures)
    sections = [
        "# MobileNet's width and resolution multipliers on CIFAR-10",
        "Generated by the `aggregate` stage from this run's metrics; do not edit by hand.",
        _bullets(
            [
                f"**Data:** {data_source_text(summary)}; source `{summary.source}`.",
                f"**Training device:** {devices}; {epochs} epoch(s) on {train_images} training "
                "images per epoch.",
                f"**Runs:** {len(table)} ({', '.join(table['model'].unique())}).",
            ]
        ),
        "## Runs",
        runs_table(table),
        "## What α and ρ cost and buy",
        _bullets(_changes(table, "width") + _changes(table, "resolution")),
        "## MobileNet against the traditional CNN",
        _bullets(baseline_sentences(table) + v2_sentences(table)),
        "## Measured scaling against α² and ρ²",
        _bullets(scaling_sentences(cost_table)),
        "## Accuracy against compute and latency",
        _bullets([pareto_sentence(table), latency_sentence(table)]),
        "## Confusion matrix",
        _bullets(confusion_sentences(confusion_run, confusion)),
        "## Figures",
        figure_lines,
    ]
    return "\n\n".join(sections) + "\n"
