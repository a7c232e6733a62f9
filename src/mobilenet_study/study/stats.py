"""How sure the study is: intervals on accuracies and paired tests between two runs.

Everything here is a thin layer over :mod:`scipy.stats`, the library's formulas, not ours:

- a run's test accuracy is a binomial proportion (k correct of n images); its 95% interval is
  Wilson's score interval (``binomtest(k, n).proportion_ci(method="wilson")``), which, unlike
  the normal approximation, stays inside [0, 1] and keeps its coverage near 0 and 1;
- two runs scored on the *same* test images are compared image by image. Only the images one
  run gets right and the other wrong (the discordant pairs) carry information about which is
  better; the exact McNemar test is a binomial test of those counts against 1/2. The interval
  on the difference in accuracy is the paired t interval on the per-image differences
  (``ttest_rel(...).confidence_interval()``).

A difference is called real only when its test's p < :data:`ALPHA`; otherwise the report says
"within noise". That rule lives in :func:`PairedComparison.significant` and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE  # the significance level that matches the 95% intervals


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


def accuracy_interval(correct: int, total: int, confidence: float = CONFIDENCE) -> Interval:
    """Wilson score interval for ``correct`` successes out of ``total`` trials."""
    if total <= 0 or not 0 <= correct <= total:
        raise ValueError(f"need 0 <= correct <= total and total > 0, got {correct}/{total}")
    ci = stats.binomtest(int(correct), int(total)).proportion_ci(
        confidence_level=confidence, method="wilson"
    )
    return Interval(float(ci.low), float(ci.high))


def seed_spread(accuracies: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1) over seeds; the std is NaN for one seed."""
    values = np.asarray(accuracies, dtype=float)
    if values.size == 0:
        raise ValueError("no accuracies to summarise")
    std = float(values.std(ddof=1)) if values.size > 1 else float("nan")
    return float(values.mean()), std


@dataclass(frozen=True)
class PairedComparison:
    """Run B against run A on the same ``images`` test images.

    ``only_a`` images A gets right and B wrong, ``only_b`` the reverse. ``difference`` is B's
    accuracy minus A's (a fraction), with its 95% interval; ``p_value`` is the exact McNemar
    test's (two-sided).
    """

    images: int
    only_a: int
    only_b: int
    difference: float
    interval: Interval
    p_value: float

    @property
    def significant(self) -> bool:
        """Whether the difference is supported by the test (p < 0.05); else within noise."""
        return self.p_value < ALPHA

    @property
    def points(self) -> float:
        """The difference in percentage points."""
        return self.difference * 100


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: a binomial test of the discordant counts against 1/2.
    With no discordant pair the runs agree everywhere and nothing tells them apart (p = 1)."""
    discordant = only_a + only_b
    if discordant == 0:
        return 1.0
    return float(stats.binomtest(int(only_b), int(discordant), 0.5).pvalue)


def paired_comparison(
    correct_a: np.ndarray, correct_b: np.ndarray, confidence: float = CONFIDENCE
) -> PairedComparison:
    """Compare two runs' per-image correctness (booleans, same images in the same order)."""
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1 or a.size < 2:
        raise ValueError(
            f"need two equally long vectors of at least 2 images, got {a.shape} and {b.shape}"
        )
    only_a = int(np.sum(a & ~b))
    only_b = int(np.sum(b & ~a))
    difference = (only_b - only_a) / a.size
    if np.ptp(b.astype(int) - a.astype(int)) == 0:
        # Every image differs alike (usually: the runs agree everywhere): no spread to estimate.
        interval = Interval(difference, difference)
    else:
        ci = stats.ttest_rel(b.astype(float), a.astype(float)).confidence_interval(confidence)
        interval = Interval(float(ci.low), float(ci.high))
    return PairedComparison(
        images=int(a.size),
        only_a=only_a,
        only_b=only_b,
        difference=difference,
        interval=interval,
        p_value=mcnemar_exact(only_a, only_b),
    )
