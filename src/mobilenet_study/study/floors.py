"""The study's floors: what a trained study must show at the ends of the grid, each with the
numbers behind it (the paired test's discordant counts included), so that the report, the
published results and their tests read one computation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import pandas as pd

from mobilenet_study.models import CANDIDATE, TWIN
from mobilenet_study.study.formatting import accuracy_cell, markdown_table, p_value, pct
from mobilenet_study.study.stats import ALPHA
from mobilenet_study.study.table import PairedTests, first_seed_runs

# The candidate's accuracy floor at the widest α and largest ρ of the grid.
FLOOR_ACCURACY = 0.70


@dataclass(frozen=True)
class Floor:
    """One floor: what it asks, what was measured, and whether it holds."""

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
        (table["model"] == model) & (table["width"] == width) & (table["resolution"] == resolution)
    ]
    return None if match.empty else match.iloc[0]


def _separation(
    name: str, asks: str, a: pd.Series, b: pd.Series, tests: PairedTests, met: bool | None = None
) -> Floor:
    comparison = tests.compare(a["run"], b["run"])
    significant = comparison.p_value < ALPHA
    measured = (
        f"{a['run']} {pct(a['test_accuracy'])} against {b['run']} {pct(b['test_accuracy'])}: "
        f"{comparison.points:+.1f} points, McNemar {p_value(comparison.p_value)} "
        f"({comparison.only_a} images right only in the first, {comparison.only_b} only in the "
        "second)"
    )
    return Floor(
        name=name,
        asks=asks,
        measured=measured,
        met=significant if met is None else met,
        run_a=a["run"],
        run_b=b["run"],
        only_a=comparison.only_a,
        only_b=comparison.only_b,
        p_value=comparison.p_value,
    )


def floors(table: pd.DataFrame, tests: PairedTests) -> list[Floor]:
    """The floors of the study at the grid's ends, on the first seed's runs.

    1. V1 at the widest α and largest ρ reaches :data:`FLOOR_ACCURACY`;
    2. the baseline at that point is more accurate than V1 there;
    3. V1's α axis ends (smallest → widest α, at the largest ρ) are separated, p < 0.05;
    4. V1's ρ axis ends (smallest → largest ρ, at the widest α) are separated, p < 0.05.

    A floor the grid cannot measure (no baseline at that point, a single α or ρ) is left out.
    """
    first = first_seed_runs(table)
    v1 = first[first["model"] == CANDIDATE]
    if v1.empty:
        return []
    widths, resolutions = sorted(v1["width"].unique()), sorted(v1["resolution"].unique())
    top_w, top_r = widths[-1], resolutions[-1]
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
        above = tests.compare(v1_top["run"], base_top["run"])
        found.append(
            _separation(
                "baseline above V1",
                f"the baseline above V1 at α {top_w:g}, ρ {top_r:g}",
                v1_top,
                base_top,
                tests,
                met=above.points > 0,
            )
        )
    narrow = _run_at(first, CANDIDATE, widths[0], top_r)
    if len(widths) > 1 and narrow is not None:
        found.append(
            _separation(
                "α ends separated",
                f"V1 at α {widths[0]:g} and α {top_w:g} (ρ {top_r:g}) separated, "
                f"McNemar p < {ALPHA:.2f}",
                narrow,
                v1_top,
                tests,
            )
        )
    small = _run_at(first, CANDIDATE, top_w, resolutions[0])
    if len(resolutions) > 1 and small is not None:
        found.append(
            _separation(
                "ρ ends separated",
                f"V1 at ρ {resolutions[0]:g} and ρ {top_r:g} (α {top_w:g}) separated, "
                f"McNemar p < {ALPHA:.2f}",
                small,
                v1_top,
                tests,
            )
        )
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
