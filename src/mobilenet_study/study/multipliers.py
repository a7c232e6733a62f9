"""Report sections on the multipliers: what each α and ρ step costs and buys (with its paired
test), and how the measured MACs and parameters scale against the paper's α² and ρ²."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mobilenet_study.grid import multiplier
from mobilenet_study.models.counting import analytic_layers
from mobilenet_study.study.formatting import evidence, num, pct, verdict
from mobilenet_study.study.stats import PairedComparison
from mobilenet_study.study.table import PairedTests, first_seed_runs


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


def multiplier_changes(table: pd.DataFrame, axis: str) -> list[Change]:
    """Per model, the largest trained value of ``axis`` against each smaller one, the other
    multiplier held at 1 where possible (else at the value with the most trained points);
    first-seed runs only."""
    table = first_seed_runs(table)
    other = multiplier(axis).other
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


def change_sentence(change: Change, comparison: PairedComparison) -> str:
    """The step's cost ratios, and its accuracy change only as far as the paired test allows."""
    ref, other = change.reference, change.other
    varied = multiplier(change.axis)
    symbol, fixed_symbol = varied.symbol, varied.other_symbol
    step = f"{symbol} {num(ref[change.axis])} → {num(other[change.axis])}"
    if change.axis == "resolution":
        step += f" ({ref['input_size']} → {other['input_size']} px)"
        params = (
            "with parameters unchanged"
            if change.params_ratio == 1
            else f"and parameters {change.params_ratio:.2f}×"
        )
    else:
        params = f"and parameters {change.params_ratio:.1f}×"
    outcome = verdict(
        comparison, "it gains accuracy", "it costs accuracy", "its accuracy change is within noise"
    )
    return (
        f"{change.model} at {fixed_symbol} {num(change.fixed)}: {step} cuts MACs "
        f"{change.macs_ratio:.1f}× ({symbol}² predicts {change.theory_ratio:.1f}×) {params}; "
        f"{outcome}: {pct(ref['test_accuracy'])} → {pct(other['test_accuracy'])} "
        f"({evidence(comparison)})."
    )


def change_sentences(table: pd.DataFrame, axis: str, tests: PairedTests) -> list[str]:
    changes = multiplier_changes(table, axis)
    if changes:
        return [
            change_sentence(c, tests.compare(c.reference["run"], c.other["run"])) for c in changes
        ]
    symbol = multiplier(axis).symbol
    return [f"Only one {symbol} was trained per model in this run, so its effect is not measured."]


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


def _head_channels(model: str, width: float) -> int:
    """The output channels of the model's last conv (the one before the classifier)."""
    layers = analytic_layers(model, width)
    return int(layers[layers["kind"] != "linear"].iloc[-1]["out_channels"])


def cost_scaling_sentences(scaling: pd.DataFrame) -> list[str]:
    """Measured MACs and params against α² (at ρ = 1) and ρ² (at α = 1), and why they differ
    (``scaling``: the cost stage's scaling table)."""
    out = []
    for model, rows in scaling.groupby("model", sort=False):
        at_rho1 = rows[np.isclose(rows["resolution"], 1.0)].sort_values("width")
        thin = at_rho1[at_rho1["width"] < 1]
        if not thin.empty:
            row = thin.iloc[0]
            thin_share = _alpha_linear_share(str(model), float(row["width"]))
            out.append(
                f"{model} at α {num(row['width'])} (ρ 1): MACs are {row['macs_norm']:.4f} of "
                f"α = 1 and parameters {row['params_norm']:.4f}, against α² = "
                f"{row['macs_theory']:.4f}. Layers that scale with α, not α² (stem conv, any "
                f"depthwise convs, classifier), carry {thin_share:.1%} of the MACs at this α "
                f"against {_alpha_linear_share(model, 1.0):.1%} at α = 1."
            )
            head = _head_channels(str(model), float(row["width"]))
            if head == _head_channels(str(model), 1.0):  # a head conv α leaves as it is
                out.append(
                    f"{model} keeps a {head}-channel head conv at α {num(row['width'])}, "
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
                f"{model} at ρ {num(row['resolution'])} (α 1): MACs are {row['macs_norm']:.4f} "
                f"of ρ = 1 against ρ² = {row['macs_theory']:.4f}; {rounding}, and the "
                "classifier's MACs do not shrink with ρ."
            )
    if not out:
        out.append(
            "No model of this grid has an α or a ρ below 1, so the scaling cannot be compared "
            "with α² and ρ² here."
        )
    return out
