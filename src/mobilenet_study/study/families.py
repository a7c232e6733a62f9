"""Report sections that compare model families: MobileNet V1 against the baseline CNN point by
point (beside the paper's Table 4) and at equal MACs (against the baseline's Pareto frontier),
and MobileNet V2 against V1. Every accuracy difference comes with its paired test."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mobilenet_study.models import CANDIDATE, MODELS, REFERENCES, TWIN
from mobilenet_study.study.formatting import (
    WITHIN_NOISE,
    accuracy_cell,
    bullets,
    difference_cell,
    evidence,
    markdown_table,
    num,
    p_value,
    pct,
    signed,
    signed_points,
    verdict,
)
from mobilenet_study.study.stats import PairedComparison
from mobilenet_study.study.table import PairedTests, first_seed_runs, point_label

# Howard et al. 2017, Table 4 (ImageNet, 224x224): the same network with standard convs
# ("Conv MobileNet") against depthwise-separable ones.
PAPER_CONV = {"accuracy": 71.7, "macs_m": 4866.0, "params_m": 29.3}
PAPER_MOBILENET = {"accuracy": 70.6, "macs_m": 569.0, "params_m": 4.2}


def paper_ratios() -> tuple[float, float, float]:
    """Table 4's MACs ratio, params ratio and accuracy change (points), Conv → MobileNet."""
    return (
        PAPER_CONV["macs_m"] / PAPER_MOBILENET["macs_m"],
        PAPER_CONV["params_m"] / PAPER_MOBILENET["params_m"],
        PAPER_MOBILENET["accuracy"] - PAPER_CONV["accuracy"],
    )


def paired_points(
    table: pd.DataFrame, first: str, second: str
) -> list[tuple[pd.Series, pd.Series]]:
    """First-seed runs of ``first`` and ``second`` trained at the same α and ρ."""
    table = first_seed_runs(table)
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


def _millions(value: float) -> str:
    return f"{value / 1e6:.2f}"


def baseline_table(table: pd.DataFrame, tests: PairedTests) -> str:
    """One row per (α, ρ) where both were trained, then the paper's Table 4 line."""
    rows = []
    for base, mobile in paired_points(table, TWIN, CANDIDATE):
        comparison = tests.compare(base["run"], mobile["run"])
        rows.append(
            {
                "α": num(base["width"]),
                "ρ": num(base["resolution"]),
                "MACs (M) baseline / V1": f"{_millions(base['macs_measured'])} / "
                f"{_millions(mobile['macs_measured'])}",
                "MACs ratio": f"{base['macs_measured'] / mobile['macs_measured']:.1f}×",
                "params (M) baseline / V1": f"{_millions(base['params'])} / "
                f"{_millions(mobile['params'])}",
                "params ratio": f"{base['params'] / mobile['params']:.1f}×",
                "baseline acc. [95% CI]": accuracy_cell(base),
                "V1 acc. [95% CI]": accuracy_cell(mobile),
                "V1 − baseline, points [95% CI]": difference_cell(comparison),
                "McNemar p": p_value(comparison.p_value).removeprefix("p = "),
                "verdict": verdict(comparison, "V1 more accurate", "baseline more accurate"),
            }
        )
    macs_p, params_p, acc_p = paper_ratios()
    rows.append(
        {
            "α": "paper",
            "ρ": "224 px",
            "MACs (M) baseline / V1": f"{PAPER_CONV['macs_m']:.0f} / "
            f"{PAPER_MOBILENET['macs_m']:.0f}",
            "MACs ratio": f"{macs_p:.1f}×",
            "params (M) baseline / V1": f"{PAPER_CONV['params_m']} / {PAPER_MOBILENET['params_m']}",
            "params ratio": f"{params_p:.1f}×",
            "baseline acc. [95% CI]": f"{PAPER_CONV['accuracy']}%",
            "V1 acc. [95% CI]": f"{PAPER_MOBILENET['accuracy']}%",
            "V1 − baseline, points [95% CI]": signed(acc_p),
            "McNemar p": "–",
            "verdict": "ImageNet, Howard et al. 2017, Table 4",
        }
    )
    return markdown_table(pd.DataFrame(rows))


def baseline_verdicts(table: pd.DataFrame, tests: PairedTests) -> dict[str, int]:
    """At how many points V1 (``v1``) or the baseline (``baseline``) is more accurate by the
    paired test, and at how many the difference is within noise (empty: no point has both)."""
    pairs = paired_points(table, TWIN, CANDIDATE)
    if not pairs:
        return {}
    found = [verdict(tests.compare(b["run"], m["run"]), "v1", "baseline") for b, m in pairs]
    return {outcome: found.count(outcome) for outcome in ("v1", "baseline", WITHIN_NOISE)}


def baseline_summary(table: pd.DataFrame, tests: PairedTests) -> list[str]:
    """How many points each family wins by its paired test, beside the paper's ratios."""
    pairs = paired_points(table, TWIN, CANDIDATE)
    macs_p, params_p, acc_p = paper_ratios()
    paper = (
        f"Howard et al. 2017, Table 4 (ImageNet): Conv MobileNet {PAPER_CONV['accuracy']}% / "
        f"{PAPER_CONV['macs_m']:.0f} M mult-adds / {PAPER_CONV['params_m']} M params against "
        f"MobileNet {PAPER_MOBILENET['accuracy']}% / {PAPER_MOBILENET['macs_m']:.0f} M / "
        f"{PAPER_MOBILENET['params_m']} M, i.e. {macs_p:.1f}× fewer MACs and {params_p:.1f}× "
        f"fewer parameters for {signed_points(acc_p)}."
    )
    if not pairs:
        return [
            "No baseline and MobileNet V1 were trained at the same α and ρ in this run, so the "
            "comparison with Table 4 cannot be made here.",
            paper,
        ]
    verdicts = baseline_verdicts(table, tests)
    macs_ratios = [b["macs_measured"] / m["macs_measured"] for b, m in pairs]
    params_ratios = [b["params"] / m["params"] for b, m in pairs]
    return [
        f"At the {len(pairs)} (α, ρ) point(s) where both were trained, MobileNet V1 needs "
        f"{min(macs_ratios):.1f}–{max(macs_ratios):.1f}× fewer MACs and "
        f"{min(params_ratios):.1f}–{max(params_ratios):.1f}× fewer parameters than the "
        "baseline (the same network with standard convs). By the paired test it is more "
        f"accurate at {verdicts['v1']}, less accurate at {verdicts['baseline']}, "
        f"and within noise at {verdicts[WITHIN_NOISE]} of them.",
        paper,
    ]


# --- At equal MACs: MobileNet V1 against the baseline's Pareto frontier -----------------------


@dataclass(frozen=True)
class FrontierPoint:
    """A MobileNet V1 run against the baseline frontier at the run's MACs.

    ``frontier_accuracy`` is the baseline frontier interpolated linearly in log-MACs (flat
    beyond its dearest point; NaN below its cheapest, where no baseline fits the budget).
    ``upper`` is the cheapest frontier baseline costing at least as much (else the dearest),
    whose accuracy bounds the frontier's from above there; ``lower`` the dearest costing at
    most as much (None below the frontier), which bounds it from below. V1 is called more
    accurate than the frontier only if its paired test against ``upper`` says so, less
    accurate only if its test against ``lower`` does. Both comparisons are V1 − baseline.
    """

    run: pd.Series
    frontier_accuracy: float
    upper: pd.Series
    lower: pd.Series | None
    against_upper: PairedComparison
    against_lower: PairedComparison | None

    @property
    def points(self) -> float:
        return (float(self.run["test_accuracy"]) - self.frontier_accuracy) * 100

    @property
    def outcome(self) -> str:
        if verdict(self.against_upper, "more", "less") == "more":
            return "more accurate"
        if self.against_lower and verdict(self.against_lower, "more", "less") == "less":
            return "less accurate"
        if np.isnan(self.frontier_accuracy):
            return "cheaper than every baseline"
        return WITHIN_NOISE


def frontier_at(front: pd.DataFrame, macs: float) -> float:
    """The frontier's accuracy at ``macs``, linear in log-MACs between its points."""
    x = np.log(front["macs_measured"].to_numpy(float))
    if np.log(macs) < x[0]:
        return float("nan")
    return float(np.interp(np.log(macs), x, front["test_accuracy"].to_numpy(float)))


def frontier_points(table: pd.DataFrame, tests: PairedTests) -> list[FrontierPoint]:
    first = first_seed_runs(table)
    front = first[(first["model"] == TWIN) & first["model_frontier"]]
    front = front.sort_values("macs_measured")
    if front.empty:
        return []
    out = []
    for _, run in first[first["model"] == CANDIDATE].sort_values("macs_measured").iterrows():
        macs = float(run["macs_measured"])
        dearer = front[front["macs_measured"] >= macs]
        cheaper = front[front["macs_measured"] <= macs]
        upper = dearer.iloc[0] if not dearer.empty else front.iloc[-1]
        lower = cheaper.iloc[-1] if not cheaper.empty else None
        out.append(
            FrontierPoint(
                run=run,
                frontier_accuracy=frontier_at(front, macs),
                upper=upper,
                lower=lower,
                against_upper=tests.compare(upper["run"], run["run"]),
                against_lower=None if lower is None else tests.compare(lower["run"], run["run"]),
            )
        )
    return out


def _tested(baseline: pd.Series | None, comparison: PairedComparison | None) -> str:
    if baseline is None or comparison is None:
        return "–"
    return (
        f"{baseline['run']}: {pct(baseline['test_accuracy'])} at "
        f"{_millions(baseline['macs_measured'])} M; {p_value(comparison.p_value)}"
    )


FRONTIER_METHOD = (
    "Each MobileNet V1 run (first seed) against the baseline's Pareto frontier at the same MACs, "
    "interpolated linearly in log-MACs between the frontier's runs. Upper bound: the cheapest "
    "frontier baseline that costs at least as much as the V1 run (past the frontier's dearest "
    "run, that run); V1 is called more accurate only if it beats this run in the paired test. "
    "Lower bound: the dearest frontier baseline that costs no more; V1 is called less accurate "
    "only if this run beats it."
)


def frontier_table(points: list[FrontierPoint]) -> str:
    rows = [
        {
            "V1 run": fp.run["run"],
            "MACs (M)": _millions(fp.run["macs_measured"]),
            "V1 acc. [95% CI]": accuracy_cell(fp.run),
            "baseline frontier here": "–"
            if np.isnan(fp.frontier_accuracy)
            else pct(fp.frontier_accuracy),
            "V1 − frontier, points": "–" if np.isnan(fp.points) else signed(fp.points),
            "upper bound: baseline run, paired test": _tested(fp.upper, fp.against_upper),
            "lower bound: baseline run, paired test": _tested(fp.lower, fp.against_lower),
            "verdict": fp.outcome,
        }
        for fp in points
    ]
    return markdown_table(pd.DataFrame(rows))


def frontier_summary(points: list[FrontierPoint]) -> str:
    """At which MAC budgets V1 beats the baseline frontier, from the tests, or that it nowhere
    does."""
    if not points:
        return (
            "No baseline run was trained, so MobileNet V1 cannot be set against a baseline "
            "frontier here."
        )
    wins = [fp for fp in points if fp.outcome == "more accurate"]
    losses = [fp for fp in points if fp.outcome == "less accurate"]
    out = []
    if wins:
        best = max(wins, key=lambda fp: np.nan_to_num(fp.points, nan=-np.inf))
        budgets = ", ".join(f"{_millions(fp.run['macs_measured'])} M" for fp in wins)
        margin = (
            f"by up to {signed_points(best.points)} over the interpolated frontier "
            f"({best.run['run']} against {best.upper['run']}, the frontier's upper bound "
            f"there: {evidence(best.against_upper)})"
            if not np.isnan(best.points)
            else f"({best.run['run']} beats even the cheapest baseline, which costs more)"
        )
        out.append(
            f"MobileNet V1 is more accurate than the baseline's Pareto frontier at the same MACs "
            f"at {len(wins)} of {len(points)} budgets ({budgets}), {margin}."
        )
    else:
        out.append(
            f"The paired tests find MobileNet V1 ahead of the baseline's Pareto frontier at the "
            f"same MACs at none of its {len(points)} budgets."
        )
    if losses:
        budgets = ", ".join(f"{_millions(fp.run['macs_measured'])} M" for fp in losses)
        out.append(
            f"The baseline frontier is more accurate at {len(losses)} budget(s) ({budgets}): a "
            "cheaper or equally cheap baseline run beats V1 there."
        )
    rest = len(points) - len(wins) - len(losses)
    if rest:
        out.append(f"At the other {rest}, the difference is within noise or untestable.")
    return " ".join(out)


# --- The references (MobileNet V2) against the candidate ---------------------------------------


def reference_sentences(table: pd.DataFrame, tests: PairedTests, reference: str) -> list[str]:
    """``reference`` against the candidate at each point where both were trained."""
    name, candidate = MODELS[reference].label, MODELS[CANDIDATE].label
    out = []
    for v1, v2 in paired_points(table, CANDIDATE, reference):
        comparison = tests.compare(v1["run"], v2["run"])
        outcome = verdict(
            comparison,
            f"it is more accurate than {candidate}",
            f"it is less accurate than {candidate}",
            "the accuracy difference is within noise",
        )
        out.append(
            f"At {point_label(v1['width'], v1['resolution'])}, {name} costs "
            f"{v2['macs_measured'] / v1['macs_measured']:.2f}× the MACs and "
            f"{v2['params'] / v1['params']:.2f}× the parameters of {candidate}; {outcome}: "
            f"{pct(v1['test_accuracy'])} → {pct(v2['test_accuracy'])} ({evidence(comparison)})."
        )
    return out


def reference_sections(table: pd.DataFrame, tests: PairedTests) -> list[str]:
    """A section per reference model trained beside the candidate (none if none was)."""
    blocks = []
    for reference in REFERENCES:
        sentences = reference_sentences(table, tests, reference)
        if sentences:
            heading = f"## {MODELS[reference].label} against {MODELS[CANDIDATE].label}"
            blocks += [heading, bullets(sentences)]
    return blocks
