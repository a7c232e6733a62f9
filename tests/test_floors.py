"""The study's floors, computed from hand-built studies whose paired tests are known by hand."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mobilenet_study.study import floors
from mobilenet_study.study.table import PairedTests, Predictions

N = 200  # test images of the hand-built study


def _predictions(correct: np.ndarray) -> Predictions:
    actual = np.array(["cat"] * len(correct))
    predicted = np.where(correct, "cat", "dog")
    return Predictions(Path("made-up.csv"), actual, predicted)


# MobileNet V1's measured MACs at the points these studies use (its real values, rounded).
MACS = {
    ("mobilenet_v1", 1.0, 1.0): 46.4e6,
    ("mobilenet_v1", 0.5, 1.0): 12.2e6,
    ("mobilenet_v1", 0.25, 1.0): 3.3e6,
    ("mobilenet_v1", 1.0, 0.75): 28.9e6,
    ("mobilenet_v1", 1.0, 0.5): 11.6e6,
    ("mobilenet_v1", 0.5, 0.5): 3.0e6,
    ("mobilenet_v1", 0.25, 0.5): 0.8e6,
}


def _study(correct: dict[str, np.ndarray], frontier: tuple[str, ...] = ()) -> pd.DataFrame:
    rows = []
    for name, right in correct.items():
        model, width, resolution, seed = name.rsplit("-", 3)
        acc = right.mean()
        rows.append(
            {
                "run": name,
                "model": model,
                "width": float(width),
                "resolution": float(resolution),
                "seed": int(seed),
                "first_seed": True,
                "macs_measured": MACS.get((model, float(width), float(resolution)), 1e9),
                "model_frontier": name in frontier,
                "test_images": len(right),
                "test_correct": int(right.sum()),
                "test_accuracy": acc,
                "test_accuracy_ci_low": acc - 0.05,
                "test_accuracy_ci_high": acc + 0.05,
            }
        )
    return pd.DataFrame(rows)


def _correct(first_right: int, first: int = 0) -> np.ndarray:
    """Images ``first`` to ``first_right - 1`` right, the rest wrong."""
    return (np.arange(N) >= first) & (np.arange(N) < first_right)


def test_floors_by_hand() -> None:
    # V1 at (1, 1): images 0-179 right, 90% >= 85%. The baseline there: 0-189, a superset
    # (only_a = 0, only_b = 10, p = 2 * 0.5**10). The α steps at ρ 1: 0.5 (0-139) → 0.25
    # (0-99): 40 discordant pairs one way; 1 → 0.5: 40. The ρ steps at α 1: 0.75 (5-184, 180
    # right) → 0.5 (0-139): 5 only at ρ 0.5 (0-4), 45 only at ρ 0.75 (140-184), and 1 → 0.75:
    # 5 each way, p = 1. §4.2 pairs: α 0.5 ρ 1 (12.2 M) against α 1 ρ 0.5 (11.6 M), the same
    # images: p = 1, within noise; α 0.25 ρ 1 (3.3 M, 0-99) against α 0.5 ρ 0.5 (3.0 M, 0-79).
    correct = {
        "mobilenet_v1-1.0-1.0-0": _correct(180),
        "baseline-1.0-1.0-0": _correct(190),
        "mobilenet_v1-0.5-1.0-0": _correct(140),
        "mobilenet_v1-0.25-1.0-0": _correct(100),
        "mobilenet_v1-1.0-0.75-0": _correct(185, first=5),
        "mobilenet_v1-1.0-0.5-0": _correct(140),
        "mobilenet_v1-0.5-0.5-0": _correct(80),
        "baseline-0.25-1.0-0": _correct(120),
    }
    study = _study(correct, frontier=("mobilenet_v1-0.25-1.0-0", "mobilenet_v1-1.0-1.0-0"))
    tests = PairedTests({name: _predictions(right) for name, right in correct.items()})
    found = {f.name: f for f in floors.floors(study, tests)}

    assert list(found) == [
        "V1 accuracy",
        "baseline above V1",
        "α 0.5 → 0.25 (ρ 1)",
        "α 1 → 0.5 (ρ 1)",
        "ρ 0.75 → 0.5 (α 1)",
        "ρ 1 → 0.75 (α 1)",
        "§4.2 α 0.5 ρ 1 or α 1 ρ 0.5",
        "§4.2 α 0.25 ρ 1 or α 0.5 ρ 0.5",
    ]
    assert found["V1 accuracy"].met and "90.0%" in found["V1 accuracy"].measured
    above = found["baseline above V1"]
    assert above.met and (above.only_a, above.only_b) == (0, 10)
    assert above.p_value == pytest.approx(2 * 0.5**10)
    # The gap, +5 points [2.0, 8.0]: Table 4's 1.1 points below it, WRN-40-2's 3.5 inside.
    interval = tests.compare(above.run_a, above.run_b).interval
    assert f"[+{interval.low * 100:.1f}, +{interval.high * 100:.1f}]" in above.measured
    assert "1.1 (MobileNet paper Table 4, ImageNet) lies below it" in above.measured
    assert "3.5 (WRN-40-2 on CIFAR-10, deficient-efficient) lies inside it" in above.measured
    alpha = found["α 0.5 → 0.25 (ρ 1)"]
    assert (alpha.run_a, alpha.run_b) == ("mobilenet_v1-0.25-1.0-0", "mobilenet_v1-0.5-1.0-0")
    assert (alpha.only_a, alpha.only_b) == (0, 40) and alpha.met
    assert alpha.p_value == pytest.approx(2 * 0.5**40)
    rho = found["ρ 0.75 → 0.5 (α 1)"]
    assert (rho.only_a, rho.only_b) == (5, 45) and rho.met
    flat = found["ρ 1 → 0.75 (α 1)"]
    assert (flat.only_a, flat.only_b) == (5, 5) and not flat.met and flat.p_value == 1.0
    tie = found["§4.2 α 0.5 ρ 1 or α 1 ρ 0.5"]
    assert not tie.met and tie.measured.startswith("within noise: ")  # the same images right
    answered = found["§4.2 α 0.25 ρ 1 or α 0.5 ρ 0.5"]
    assert (answered.run_a, answered.run_b) == ("mobilenet_v1-0.25-1.0-0", "mobilenet_v1-0.5-0.5-0")
    assert answered.met and answered.measured.startswith("shrink width")
    assert "mobilenet_v1-0.25-1.0-0 on, mobilenet_v1-0.5-0.5-0 off" in answered.measured
    assert "missed" in floors.floors_table(found.values())
    assert "6 of 8 floors are met" in floors.floors_sentence(list(found.values()))


def test_a_step_the_wrong_way_misses_its_floor_even_when_significant() -> None:
    correct = {
        "mobilenet_v1-1.0-1.0-0": _correct(169),  # 84.5%
        "baseline-1.0-1.0-0": _correct(100),  # far below V1: not "above"
        "mobilenet_v1-0.5-1.0-0": _correct(190),  # narrower, yet ahead by 21 images
    }
    tests = PairedTests({name: _predictions(right) for name, right in correct.items()})
    found = {f.name: f for f in floors.floors(_study(correct), tests)}
    assert not found["V1 accuracy"].met
    assert "84.5%" in floors.floors_sentence(list(found.values()))
    assert not found["baseline above V1"].met and found["baseline above V1"].p_value < 0.001
    step = found["α 1 → 0.5 (ρ 1)"]
    assert step.p_value < 0.001 and not step.met


def test_floors_the_grid_cannot_measure_are_left_out() -> None:
    # One α, one ρ, no baseline: only the accuracy floor applies.
    correct = {"mobilenet_v1-0.5-0.75-0": _correct(180), "mobilenet_v2-0.5-0.75-0": _correct(9)}
    tests = PairedTests({name: _predictions(right) for name, right in correct.items()})
    found = floors.floors(_study(correct), tests)
    assert [f.name for f in found] == ["V1 accuracy"]
    assert found[0].met  # 90%
    # No V1 at all: no floor, and the section says so in place of a table.
    only_v2 = {"mobilenet_v2-0.5-0.75-0": _correct(9)}
    assert floors.floors(_study(only_v2), tests) == []
    heading, sentence = floors.section([])
    assert heading == "## Floors" and "no floor applies" in sentence


def test_floors_survive_their_table() -> None:
    correct = {
        "mobilenet_v1-1.0-1.0-0": _correct(150),
        "baseline-1.0-1.0-0": _correct(160),
        "mobilenet_v1-0.25-1.0-0": _correct(100),
    }
    tests = PairedTests({name: _predictions(right) for name, right in correct.items()})
    found = floors.floors(_study(correct), tests)
    frame = floors.floors_frame(found)
    assert list(frame.columns)[:4] == ["name", "asks", "measured", "met"]
    back = floors.read_floors(pd.read_csv(io.StringIO(frame.to_csv(index=False))))
    assert [(f.name, f.met, f.run_a, f.only_b) for f in back] == [
        (f.name, f.met, f.run_a, f.only_b) for f in found
    ]
    assert back[0].run_b == "" and np.isnan(back[0].p_value)
