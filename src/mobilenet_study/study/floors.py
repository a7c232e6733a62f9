"""The study's floors: what a study of trained networks must show, each with the numbers
behind it (the paired test's discordant counts included), so that the report, the
published results and their tests read one computation."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd

from mobilenet_study.grid import RESOLUTION, WIDTH, Multiplier
from mobilenet_study.models import CANDIDATE, TWIN
from mobilenet_study.study.families import paper_ratios
from mobilenet_study.study.formatting import (
    accuracy_cell,
    markdown_table,
    p_value,
    pct,
    signed,
)
from mobilenet_study.study.stats import ALPHA
from mobilenet_study.study.table import PairedTests, first_seed_runs, point_label

# The candidate's accuracy floor at the widest α and largest ρ of the grid.
FLOOR_ACCURACY = 0.85
# Two V1 runs cost "the same MACs" (the paper's §4.2 question) within this ratio.
MATCHED_MACS = 1.25


def converged_gaps() -> list[tuple[str, float]]:
    """The accuracy a network gives up for depthwise-separable convs, trained to convergence,
    in the literature (points of top-1): what the baseline-above-V1 gap is compared with."""
    return [
        ("MobileNet paper Table 4, ImageNet", -paper_ratios()[2]),
        # BayesWatch's deficient-efficient experiments: WRN-40-2 on CIFAR-10, 94.94% with
        # standard convs against 91.49% with depthwise-separable ones.
        ("WRN-40-2 on CIFAR-10, deficient-efficient", 3.5),
    ]


@dataclass(frozen=True)
class Floor:
    """One floor: what it asks, what was measured, and whether it holds. A floor comparing two
    runs expects run B above run A (at p < 0.05), but a §4.2 floor (``name`` starting with
    "§4.2") only asks that the test tell them apart, whichever way."""

    name: str
    asks: str
    measured: str
    met: bool
    run_a: str = ""
    run_b: str = ""
    only_a: int = 0  # test images only run A classified correctly (McNemar's discordant pairs)
    only_b: int = 0
    p_value: float = float("nan")


def _run_at(table: pd.DataFrame, model: str, width: float, resolution: float) -> pd.Series | None:
    """The first-seed run of ``model`` at (α, ρ), or None where the grid has none."""
    match = table[
        (table["model"] == model)
        & np.isclose(table["width"], width)
        & np.isclose(table["resolution"], resolution)
    ]
    return None if match.empty else match.iloc[0]


def _compared(
    name: str, asks: str, a: pd.Series, b: pd.Series, tests: PairedTests, either_way: bool = False
) -> Floor:
    """Run B against run A: met when B is ahead at p < 0.05 (or, ``either_way``, when the test
    separates them at all)."""
    comparison = tests.compare(a["run"], b["run"])
    measured = (
        f"{a['run']} {pct(a['test_accuracy'])} against {b['run']} {pct(b['test_accuracy'])}: "
        f"{comparison.points:+.1f} points, McNemar {p_value(comparison.p_value)} "
        f"({comparison.only_a} images right only in the first, {comparison.only_b} only in the "
        "second)"
    )
    ahead = either_way or comparison.points > 0
    return Floor(
        name=name,
        asks=asks,
        measured=measured,
        met=bool(ahead and comparison.significant),
        run_a=a["run"],
        run_b=b["run"],
        only_a=comparison.only_a,
        only_b=comparison.only_b,
        p_value=comparison.p_value,
    )


def _gap_against_literature(floor: Floor, tests: PairedTests) -> Floor:
    """The baseline-above-V1 floor, its gap's 95% interval set beside the converged gaps."""
    interval = tests.compare(floor.run_a, floor.run_b).interval
    low, high = interval.low * 100, interval.high * 100
    readings = []
    for source, gap in converged_gaps():
        where = "inside" if low <= gap <= high else "above" if gap > high else "below"
        readings.append(f"{gap:.1f} ({source}) lies {where} it")
    measured = f"{floor.measured}; gap 95% interval [{signed(low)}, {signed(high)}] points: " + (
        ", ".join(readings)
    )
    return replace(floor, measured=measured)


def _steps(first: pd.DataFrame, tests: PairedTests, along: Multiplier, at: float) -> list[Floor]:
    """Each step down ``along`` with the other multiplier at ``at``: the smaller multiplier
    (run A) below the larger (run B), with its paired test."""
    v1 = first[(first["model"] == CANDIDATE) & np.isclose(first[along.other], at)]
    rows = [row for _, row in v1.sort_values(along.name).iterrows()]
    held = f"{along.other_symbol} {at:g}"
    found = []
    for small, large in itertools.pairwise(rows):
        step = f"{along.symbol} {large[along.name]:g} → {small[along.name]:g}"
        found.append(
            _compared(
                f"{step} ({held})",
                f"V1 at {held} loses accuracy from {step}, McNemar p < {ALPHA:.2f}",
                small,
                large,
                tests,
            )
        )
    return found


def _matched_macs(first: pd.DataFrame, tests: PairedTests) -> list[Floor]:
    """The paper's §4.2 question on V1's own grid: at about the same MACs (within
    :data:`MATCHED_MACS`), shrink width (run A: narrower, larger ρ) or resolution (run B:
    wider, smaller ρ)? Answered where the paired test separates them; the runs' places on
    V1's accuracy-against-MACs frontier are said."""
    v1 = first[first["model"] == CANDIDATE].sort_values("macs_measured", ascending=False)
    found = []
    for _, narrow in v1.iterrows():
        for _, wide in v1.iterrows():
            if not (wide["width"] > narrow["width"] and wide["resolution"] < narrow["resolution"]):
                continue
            ratio = wide["macs_measured"] / narrow["macs_measured"]
            if not 1 / MATCHED_MACS <= ratio <= MATCHED_MACS:
                continue
            narrow_at, wide_at = (
                f"{point_label(r['width'], r['resolution'])}, {r['macs_measured'] / 1e6:.1f} M"
                for r in (narrow, wide)
            )
            floor = _compared(
                f"§4.2 {point_label(narrow['width'], narrow['resolution'])} or "
                f"{point_label(wide['width'], wide['resolution'])}",
                f"§4.2 at about the same MACs: shrink width ({narrow_at}) or resolution "
                f"({wide_at})? Answered at McNemar p < {ALPHA:.2f}",
                narrow,
                wide,
                tests,
                either_way=True,
            )
            gain = wide["test_accuracy"] - narrow["test_accuracy"]
            answer = "shrink resolution" if gain > 0 else "shrink width" if gain < 0 else "a tie"
            frontier = [
                f"{r['run']} {'on' if r['model_frontier'] else 'off'}" for r in (narrow, wide)
            ]
            leaning = f" (ahead: {answer})" if gain else ""
            verdict = answer if floor.met else f"within noise{leaning}"
            found.append(
                replace(
                    floor,
                    measured=f"{verdict}: {floor.measured}; V1's accuracy-against-MACs "
                    f"frontier: {', '.join(frontier)}",
                )
            )
    return found


def floors(table: pd.DataFrame, tests: PairedTests) -> list[Floor]:
    """The floors of the study, on the first seed's runs.

    1. V1 at the widest α and largest ρ reaches :data:`FLOOR_ACCURACY`;
    2. the baseline at that point is more accurate than V1 there (p < 0.05), the gap's
       interval beside the converged gaps of the literature (:func:`converged_gaps`);
    3. at the largest ρ, V1 loses accuracy with every step down in α, each step's paired test
       at p < 0.05; 4. at the widest α, likewise with every step down in ρ;
    5. §4.2: each pair of V1 runs at about the same MACs, one narrower and one at a lower
       resolution, told apart by its paired test (:func:`_matched_macs`).

    A floor the grid cannot measure (no baseline at that point, a single α or ρ, no matched
    pair) is left out.
    """
    first = first_seed_runs(table)
    v1 = first[first["model"] == CANDIDATE]
    if v1.empty:
        return []
    top_w, top_r = v1["width"].max(), v1["resolution"].max()
    v1_top = _run_at(first, CANDIDATE, top_w, top_r)
    if v1_top is None:  # the grid is a full product of its axes, but a table may be partial
        return []
    found = [
        Floor(
            name="V1 accuracy",
            asks=f"MobileNet V1 at α {top_w:g}, ρ {top_r:g}: at least {FLOOR_ACCURACY:.0%} top-1",
            measured=accuracy_cell(v1_top),
            met=bool(v1_top["test_accuracy"] >= FLOOR_ACCURACY),
            run_a=v1_top["run"],
        )
    ]
    base_top = _run_at(first, TWIN, top_w, top_r)
    if base_top is not None:
        above = _compared(
            "baseline above V1",
            f"the baseline above V1 at α {top_w:g}, ρ {top_r:g}, McNemar p < {ALPHA:.2f}; "
            "the gap against the converged figures of the literature",
            v1_top,
            base_top,
            tests,
        )
        found.append(_gap_against_literature(above, tests))
    found += _steps(first, tests, WIDTH, top_r)
    found += _steps(first, tests, RESOLUTION, top_w)
    found += _matched_macs(first, tests)
    return found


def floors_table(found: Sequence[Floor]) -> str:
    if not found:
        return ""
    rows = [
        {"floor": f.asks, "measured": f.measured, "outcome": "met" if f.met else "**missed**"}
        for f in found
    ]
    return markdown_table(pd.DataFrame(rows))


def floors_sentence(found: Sequence[Floor]) -> str:
    if not found:
        return "This grid has no MobileNet V1 run at its widest α and largest ρ: no floor applies."
    missed = [f for f in found if not f.met]
    if not missed:
        return f"All {len(found)} floors are met."
    names = "; ".join(f"{f.asks} — measured {f.measured}" for f in missed)
    return f"{len(found) - len(missed)} of {len(found)} floors are met. Missed: {names}."


def floors_frame(found: Sequence[Floor]) -> pd.DataFrame:
    """The floors as a table (``floors.csv``), one row per floor."""
    return pd.DataFrame([asdict(f) for f in found], columns=[*Floor.__dataclass_fields__])


def read_floors(frame: pd.DataFrame) -> list[Floor]:
    """The floors back from :func:`floors_frame`'s table."""
    return [
        Floor(**{**row, "met": bool(row["met"])})
        for row in frame.fillna({"run_a": "", "run_b": ""}).to_dict("records")
    ]


def section(found: Sequence[Floor]) -> list[str]:
    """The report's floors section: the verdict in a sentence, then the table."""
    return ["## Floors", floors_sentence(found), *([floors_table(found)] if found else [])]
