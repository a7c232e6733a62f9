"""Intervals and paired tests against values worked out by hand from their textbook formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mobilenet_study.study import stats

Z = 1.959963984540054  # the 97.5th percentile of the standard normal


def test_wilson_interval_matches_the_formula_by_hand() -> None:
    # p = 0.5, n = 10: centre (p + z²/2n) / (1 + z²/n) = 0.5, half-width
    # z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n) = 0.263407.
    ci = stats.accuracy_interval(5, 10)
    assert ci.low == pytest.approx(0.236593, abs=1e-6)
    assert ci.high == pytest.approx(0.763407, abs=1e-6)
    # No successes: the lower end stays at 0 (a normal interval would go negative) and the
    # upper end is z²/n / (1 + z²/n).
    zero = stats.accuracy_interval(0, 10)
    assert zero.low == 0.0
    assert zero.high == pytest.approx((Z**2 / 10) / (1 + Z**2 / 10), abs=1e-9)
    # 1,000 test images put about ±3 points around 50%.
    wide = stats.accuracy_interval(500, 1000)
    assert (wide.high - wide.low) / 2 == pytest.approx(0.0309, abs=2e-4)


@pytest.mark.parametrize(("correct", "total"), [(-1, 10), (11, 10), (0, 0)])
def test_wilson_interval_refuses_impossible_counts(correct: int, total: int) -> None:
    with pytest.raises(ValueError, match="correct <= total"):
        stats.accuracy_interval(correct, total)


@pytest.mark.parametrize(
    ("only_a", "only_b", "p"),
    [
        # Two-sided exact binomial test of the discordant counts against 1/2:
        (10, 3, 2 * (1 + 13 + 78 + 286) / 2**13),  # 2·P(X <= 3 | n = 13)
        (0, 6, 2 / 2**6),
        (1, 5, 2 * (1 + 6) / 2**6),
        (4, 4, 1.0),
        (0, 0, 1.0),  # the runs agree on every image
    ],
)
def test_exact_mcnemar_by_hand(only_a: int, only_b: int, p: float) -> None:
    assert stats.mcnemar_exact(only_a, only_b) == pytest.approx(p, rel=1e-12)


def test_paired_comparison_counts_discordant_images_and_its_interval() -> None:
    a = np.array([0, 0, 1, 1, 0, 0], dtype=bool)
    b = np.array([1, 1, 1, 1, 0, 0], dtype=bool)
    result = stats.paired_comparison(a, b)
    assert (result.images, result.only_a, result.only_b) == (6, 0, 2)
    assert result.difference == pytest.approx(1 / 3)
    # Paired t interval on d = b - a = [1, 1, 0, 0, 0, 0]: mean 1/3, sd sqrt(4/15),
    # t(0.975, 5 df) = 2.570582.
    half = 2.570582 * math.sqrt(4 / 15) / math.sqrt(6)
    assert result.interval.low == pytest.approx(1 / 3 - half, abs=1e-6)
    assert result.interval.high == pytest.approx(1 / 3 + half, abs=1e-6)
    assert result.p_value == pytest.approx(0.5)  # 2 · (1/2)²
    assert not result.significant


def test_identical_runs_differ_by_nothing() -> None:
    a = np.array([1, 0, 1, 1], dtype=bool)
    result = stats.paired_comparison(a, a)
    assert result.difference == 0 and result.interval == stats.Interval(0.0, 0.0)
    assert result.p_value == 1.0 and not result.significant


def test_significance_is_p_below_five_percent() -> None:
    rng = np.random.default_rng(0)
    a = rng.random(2000) < 0.6
    b = a.copy()
    flips = np.flatnonzero(a)[:60]  # B loses 60 images A gets right, gains none
    b[flips] = False
    result = stats.paired_comparison(a, b)
    assert result.only_a == 60 and result.only_b == 0
    assert result.significant and result.points == pytest.approx(-3.0)
    assert result.interval.high < 0


def test_paired_comparison_needs_matching_vectors() -> None:
    with pytest.raises(ValueError, match="equally long"):
        stats.paired_comparison(np.ones(3, bool), np.ones(4, bool))


def test_seed_spread() -> None:
    mean, std = stats.seed_spread([0.5, 0.6, 0.7])
    assert mean == pytest.approx(0.6) and std == pytest.approx(0.1)
    assert math.isnan(stats.seed_spread([0.5])[1])
