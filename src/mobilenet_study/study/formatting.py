"""How the report writes numbers: percentages with their intervals, signed differences, p-values,
and the one phrase for a difference its test does not support ("within noise")."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from mobilenet_study.study.stats import PairedComparison

WITHIN_NOISE = "within noise"


def pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def num(value: float) -> str:
    return f"{value:g}"


def signed(value: float, digits: int = 1) -> str:
    """``-2.1`` -> ``−2.1`` (the typographic minus the report uses throughout)."""
    return f"{value:+.{digits}f}".replace("-", "−")


def signed_points(delta: float) -> str:
    return f"{signed(delta)} points"


def accuracy(row: pd.Series) -> str:
    """``41.3% (95% CI 38.3–44.4%)`` for a run's test accuracy."""
    return (
        f"{pct(row['test_accuracy'])} (95% CI {row['test_accuracy_ci_low'] * 100:.1f}–"
        f"{pct(row['test_accuracy_ci_high'])})"
    )


def accuracy_cell(row: pd.Series) -> str:
    """The same for a table cell: ``41.3% [38.3, 44.4]``."""
    return (
        f"{pct(row['test_accuracy'])} [{row['test_accuracy_ci_low'] * 100:.1f}, "
        f"{row['test_accuracy_ci_high'] * 100:.1f}]"
    )


def p_value(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2f}"


def difference_cell(comparison: PairedComparison) -> str:
    """``−2.1 [−4.0, −0.2]``: B − A in points with its 95% interval."""
    low, high = comparison.interval.low * 100, comparison.interval.high * 100
    return f"{signed(comparison.points)} [{signed(low)}, {signed(high)}]"


def evidence(comparison: PairedComparison) -> str:
    """``−2.1 points, 95% CI −4.0 to −0.2, McNemar p = 0.03`` (B − A)."""
    low, high = comparison.interval.low * 100, comparison.interval.high * 100
    return (
        f"{signed_points(comparison.points)}, 95% CI {signed(low)} to {signed(high)}, "
        f"McNemar {p_value(comparison.p_value)}"
    )


def verdict(
    comparison: PairedComparison, b_better: str, a_better: str, noise: str = WITHIN_NOISE
) -> str:
    """What the test supports: ``b_better`` or ``a_better`` when p < 0.05, else ``noise``
    (a phrase that says "within noise")."""
    if not comparison.significant:
        return noise
    return b_better if comparison.difference > 0 else a_better


def markdown_table(frame: pd.DataFrame) -> str:
    """``frame`` as a Markdown pipe table (pandas, through tabulate), every cell as written:
    the cells are formatted already, and tabulate must not parse them as numbers again."""
    return frame.to_markdown(index=False, tablefmt="pipe", disable_numparse=True)


def bullets(lines: Iterable[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)
